import * as effectEslint from "@effect/eslint-plugin"
import js from "@eslint/js"
import tseslint from "typescript-eslint"

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", ".tools/**", "apps/osqueue/dashboard/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...effectEslint.configs.dprint,
  {
    languageOptions: { globals: { process: "readonly", console: "readonly", URL: "readonly" } },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // Effect generators often yield* only to sequence; a generator without yield is still fine
      "require-yield": "off",
      // libraries log through Effect.log*, so users control output
      "no-console": "error",
      // one format across the tree, the Effect packages' own (fix with `pnpm lint --fix`)
      "@effect/dprint": ["error", {
        config: {
          indentWidth: 2,
          lineWidth: 120,
          semiColons: "asi",
          quoteStyle: "alwaysDouble",
          trailingCommas: "never",
          operatorPosition: "maintain",
          "arrowFunction.useParentheses": "force"
        }
      }]
    }
  },
  {
    files: ["scripts/**", "**/test/**", "**/examples/**", "**/bench/**", "apps/**/src/bin.ts"],
    rules: { "no-console": "off" }
  }
)
