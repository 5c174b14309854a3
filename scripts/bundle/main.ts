/**
 * `pnpm bundle [--out DIR]`: the `osqueue` command as one file that needs nothing but Node 20+,
 * for containers and hosts without a package manager (docs/deploy.md). Writes, to DIR
 * (default `dist/osqueue`):
 *
 *   osqueue.mjs               the command and every dependency (the cloud SDKs included), one ES module
 *   dashboard/                the built dashboard (apps/web), which the broker serves at `/`
 *   THIRD-PARTY-LICENSES.txt  the license of every package bundled into osqueue.mjs, which
 *                             their licenses ask to travel with the code
 *
 * The dashboard ships beside the bundle rather than inside it: the broker serves it from a
 * directory (its assets precompressed, cached by content hash), and the bundle's entry points
 * OSQUEUE_DASHBOARD_DIR there (entry.ts). Copy the folder as it is.
 */
import { build } from "esbuild"
import { execFileSync } from "node:child_process"
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, "..", "..")

const { values } = (() => {
  try {
    return parseArgs({ options: { out: { type: "string" } } })
  } catch (error) {
    console.error(`${(error as Error).message}\nusage: pnpm bundle [--out DIR]   (default dist/osqueue)`)
    process.exit(2)
  }
})()
const out = resolve(values.out ?? join(root, "dist", "osqueue"))

/**
 * The licenses of the npm packages among the bundle's inputs (paths under `node_modules/`,
 * relative to the root): each package's name, version and license field, then its license file.
 */
const licenses = (inputs: ReadonlyArray<string>): string => {
  const packageDirs = new Set<string>()
  for (const input of inputs) {
    const at = input.lastIndexOf("node_modules/")
    if (at < 0) continue
    const [scope = "", name = ""] = input.slice(at + "node_modules/".length).split("/")
    packageDirs.add(input.slice(0, at + "node_modules/".length) + (scope.startsWith("@") ? `${scope}/${name}` : scope))
  }
  const sections = [...packageDirs].map((dir) => {
    const manifest = JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8")) as {
      name: string
      version: string
      license?: string
    }
    const file = readdirSync(join(root, dir)).find((name) => /^(licen[cs]e|copying)(\.|$)/i.test(name))
    const text = file === undefined
      ? "(the package ships no license file)"
      : readFileSync(join(root, dir, file), "utf8").trim()
    return `${manifest.name}@${manifest.version} (${manifest.license ?? "no license field"})\n\n${text}`
  })
  return ["Packages bundled into osqueue.mjs and their licenses.", ...sections.sort()].join("\n\n---\n\n") + "\n"
}

console.log("=== the dashboard (pnpm --filter @osqueue/web build)")
execFileSync(process.execPath, [join(root, "scripts", "pnpm.mjs"), "--filter", "@osqueue/web", "build"], {
  cwd: root,
  stdio: "inherit"
})
const dashboard = join(root, "apps", "osqueue", "dashboard")
if (!existsSync(join(dashboard, "index.html"))) {
  console.error(`bundle: the dashboard build left no ${relative(root, join(dashboard, "index.html"))}`)
  process.exit(1)
}

console.log(`=== the bundle (esbuild) to ${out}`)
rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })
const { metafile } = await build({
  absWorkingDir: root,
  metafile: true,
  entryPoints: [join(here, "entry.ts")],
  outfile: join(out, "osqueue.mjs"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // The workspace packages from their sources, as the tests run them: no `tsc -b` first.
  conditions: ["source"],
  // CommonJS dependencies (the AWS and Google SDKs) call `require` for Node's own modules, which
  // an ES module does not have: give the bundle one.
  banner: {
    js:
      "import { createRequire as __osqueueRequire } from 'node:module'; const require = __osqueueRequire(import.meta.url);"
  },
  logLevel: "warning"
})
writeFileSync(join(out, "THIRD-PARTY-LICENSES.txt"), licenses(Object.keys(metafile.inputs)))
// Source maps stay behind: the broker never serves them (they would publish the sources).
cpSync(dashboard, join(out, "dashboard"), { recursive: true, filter: (source) => !source.endsWith(".map") })

const packages = licenses(Object.keys(metafile.inputs)).split("\n\n---\n\n").length - 1
const megabytes = (statSync(join(out, "osqueue.mjs")).size / 1024 / 1024).toFixed(1)
console.log(
  `bundle: ${
    relative(process.cwd(), out) || "."
  }/osqueue.mjs (${megabytes} MB), dashboard/ and THIRD-PARTY-LICENSES.txt ` +
    `(${packages} packages); run: node osqueue.mjs --help`
)
