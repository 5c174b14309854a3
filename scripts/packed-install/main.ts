/**
 * `pnpm packed-install`: a user's first hour, from the published packages. Packs @osqueue/types,
 * storage, core, broker, client and worker (`pnpm pack`, as they would be published), checks
 * each tarball's metadata (license, README, an `exports` map with types, `files`,
 * `sideEffects`), installs the tarballs with npm into a fresh project outside the workspace,
 * type-checks and builds that project's programs (project/), then starts its broker and runs
 * its Effect-style producer and worker and its Promise-style producer and worker against it.
 * Needs the registry for the packages' own dependencies. Exits 1 on the first failure.
 */
import { execFileSync, spawn } from "node:child_process"
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, "..", "..")
const packages = ["types", "storage", "core", "broker", "client", "worker"]

const step = (what: string) => console.log(`\n=== ${what}`)
const run = (cmd: string, args: ReadonlyArray<string>, cwd: string) =>
  execFileSync(cmd, args, { cwd, stdio: "inherit" })
const fail = (message: string): never => {
  console.error(`packed-install: ${message}`)
  process.exit(1)
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

const work = mkdtempSync(join(tmpdir(), "osqueue-packed-"))
const packs = join(work, "packs")
const project = join(work, "project")

step("build and pack")
run("pnpm", ["build"], root)
for (const name of packages) {
  run("pnpm", ["pack", "--pack-destination", packs], join(root, "packages", name))
}
const tarballs = readdirSync(packs).map((file) => join(packs, file))

step("what each tarball holds")
for (const tarball of tarballs) {
  const files = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" }).split("\n")
  const manifest = JSON.parse(
    execFileSync("tar", ["-xOzf", tarball, "package/package.json"], { encoding: "utf8" })
  ) as {
    name: string
    license?: string
    exports?: Record<string, { types?: string; default?: string }>
    files?: ReadonlyArray<string>
    sideEffects?: unknown
    dependencies?: Record<string, string>
  }
  const problems = [
    ...["package/LICENSE", "package/README.md"].filter((f) => !files.includes(f)).map((f) => `no ${f.slice(8)}`),
    ...(manifest.license === undefined ? ["no license field"] : []),
    ...(manifest.files === undefined ? ["no files list"] : []),
    ...(manifest.sideEffects === undefined ? ["no sideEffects field"] : []),
    ...Object.entries(manifest.exports ?? { ".": {} }).flatMap(([path, entry]) =>
      [entry.types, entry.default].filter((f) => f === undefined || !files.includes(`package/${f.slice(2)}`)).length > 0
        ? [`export ${path} lacks its types or its code`]
        : []
    ),
    ...Object.entries(manifest.dependencies ?? {}).filter(([, v]) => /^(workspace|catalog):/.test(v)).map(([k]) =>
      `dependency ${k} not resolved`
    )
  ]
  console.log(`${manifest.name}: ${problems.length === 0 ? "ok" : problems.join(", ")}`)
  if (problems.length > 0) fail(`${manifest.name} is not ready to publish`)
}

step("a fresh project, outside the workspace")
execFileSync("mkdir", ["-p", project])
for (const file of readdirSync(join(here, "project"))) copyFileSync(join(here, "project", file), join(project, file))
run("npm", ["init", "-y"], project)
run("npm", ["pkg", "set", "type=module"], project)
const catalog = (name: string) => {
  const line = execFileSync("grep", [`^  "\\?${name}"\\?:`, join(root, "pnpm-workspace.yaml")], { encoding: "utf8" })
  return line.split(":")[1]!.trim()
}
run("npm", [
  "install",
  "--no-audit",
  "--no-fund",
  ...tarballs,
  `effect@${catalog("effect")}`,
  `@effect/platform-node@${catalog("@effect/platform-node")}`
], project)
run("npm", [
  "install",
  "--no-audit",
  "--no-fund",
  "--save-dev",
  `typescript@${catalog("typescript")}`,
  `@types/node@${catalog("@types/node")}`
], project)

step("type-check and build the project (the packages' types, through their exports)")
run("npx", ["tsc", "-p", "."], project)

step("a broker, then an Effect producer and worker, then a Promise producer and worker")
const port = await freePort()
const url = `http://127.0.0.1:${port}`
const env = {
  ...process.env,
  BROKER_HOST: "127.0.0.1",
  BROKER_PORT: String(port),
  BROKER_URL: url,
  OSQUEUE_BROKERS: url,
  OSQUEUE_DIR: join(work, "store")
}
const broker = spawn(process.execPath, ["dist/broker.js"], {
  cwd: project,
  env,
  stdio: ["ignore", "inherit", "inherit"]
})
const brokerExit = new Promise<number | null>((resolve) => broker.on("exit", resolve))
const deadline = Date.now() + 30_000
for (;;) {
  const role = await fetch(`${url}/v1/leader`).then(
    (r) => r.json() as Promise<{ role?: string }>,
    () => ({ role: undefined })
  )
  if (role.role === "leader") break
  if (Date.now() > deadline) {
    broker.kill("SIGKILL")
    fail("the broker did not lead within 30 s")
  }
  await new Promise((resolve) => setTimeout(resolve, 200))
}
try {
  for (const program of ["dist/effect.js", "dist/promise.js"]) {
    execFileSync(process.execPath, [program], { cwd: project, env, stdio: "inherit", timeout: 60_000 })
  }
} catch (error) {
  broker.kill("SIGKILL")
  fail(`a program failed: ${String(error)}`)
}
broker.kill("SIGTERM")
const code = await brokerExit
if (code !== 0) fail(`the broker exited with ${code} on SIGTERM`)
rmSync(work, { recursive: true, force: true })
console.log("\npacked-install: ok")
