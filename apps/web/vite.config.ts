/**
 * Builds the dashboard to `dist/` (the broker serves it at `/`). Workspace packages are built
 * from their TypeScript sources (the `source` export condition), so no `tsc -b` is needed
 * first. `vite` (the dev server) proxies the broker's routes to `VITE_BROKER_URL`
 * (default http://localhost:8080), so the page talks to its own origin in dev as in production.
 */
import { defaultClientConditions, defineConfig, loadEnv } from "vite"

export default defineConfig(({ mode }) => {
  const broker = loadEnv(mode, process.cwd(), "VITE_")["VITE_BROKER_URL"] || "http://localhost:8080"
  return {
    resolve: { conditions: ["source", ...defaultClientConditions] },
    build: { target: "es2022", sourcemap: true, chunkSizeWarningLimit: 1_500 },
    server: {
      proxy: {
        "/rpc": { target: broker, ws: true },
        "/v1": broker,
        "/state": broker
      }
    }
  }
})
