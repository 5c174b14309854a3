import js from "@eslint/js"
import tseslint from "typescript-eslint"

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", ".tools/**", "apps/osqueue/dashboard/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: "readonly", console: "readonly", URL: "readonly" } },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // Effect generators often yield* only to sequence; a generator without yield is still fine
      "require-yield": "off",
      // libraries log through Effect.log*, so users control output
      "no-console": "error"
    }
  },
  {
    files: ["scripts/**", "**/test/**", "**/examples/**", "**/bench/**", "apps/**/src/bin.ts"],
    rules: { "no-console": "off" }
  }
)
