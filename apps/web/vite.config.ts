/**
 * Builds the dashboard into the `osqueue` package (`apps/osqueue/dashboard/`), which serves it at
 * `/`: the command ships its dashboard, so it needs no private package to install. Workspace
 * packages are built from their TypeScript sources (the `source` export condition), so no
 * `tsc -b` is needed first. No source map is built (it would be public under `/assets/`); each
 * asset also gets a `.br` and a `.gz` copy, which the broker serves to browsers that accept them.
 * `vite` (the dev server) proxies the broker's routes to `VITE_BROKER_URL` (default
 * http://localhost:8080), so the page talks to its own origin in dev as in production.
 */
import { readdir, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { brotliCompressSync, constants, gzipSync } from "node:zlib"
import { defaultClientConditions, defineConfig, loadEnv, type Plugin } from "vite"

/** Writes `<file>.br` and `<file>.gz` beside each built asset worth compressing. */
const precompress = (): Plugin => {
  let outDir = ""
  return {
    name: "osqueue-precompress",
    apply: "build",
    configResolved: (config) => void (outDir = config.build.outDir),
    writeBundle: async () => {
      const assets = join(outDir, "assets")
      for (const name of await readdir(assets)) {
        if (!/\.(js|css|svg|json)$/.test(name)) continue
        const bytes = await readFile(join(assets, name))
        if (bytes.length < 1_024) continue
        await writeFile(
          join(assets, `${name}.br`),
          brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } })
        )
        await writeFile(join(assets, `${name}.gz`), gzipSync(bytes, { level: 9 }))
      }
    }
  }
}

export default defineConfig(({ mode }) => {
  const broker = loadEnv(mode, process.cwd(), "VITE_")["VITE_BROKER_URL"] || "http://localhost:8080"
  return {
    resolve: { conditions: ["source", ...defaultClientConditions] },
    plugins: [precompress()],
    build: {
      target: "es2022",
      outDir: fileURLToPath(new URL("../osqueue/dashboard", import.meta.url)),
      emptyOutDir: true,
      sourcemap: false,
      chunkSizeWarningLimit: 1_500
    },
    server: {
      proxy: {
        "/rpc": { target: broker, ws: true },
        "/v1": broker,
        "/state": broker
      }
    }
  }
})
