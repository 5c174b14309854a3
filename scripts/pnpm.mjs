#!/usr/bin/env node
// Runs the workspace's pinned pnpm, so a fresh clone needs only Node 20 and npm:
// `npm test` / `npm start` come here. Finds pnpm 9.15.9 on PATH or installs it into .tools/
// (no root needed), installs dependencies when the lockfile is newer than node_modules,
// then runs `pnpm <args>`.
import { execFileSync, spawnSync } from "node:child_process"
import { existsSync, statSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const version = "9.15.9"
const local = join(root, ".tools", "node_modules", ".bin", "pnpm")

const versionOf = (cmd) => {
  try {
    return execFileSync(cmd, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
  } catch {
    return undefined
  }
}

const findPnpm = () => {
  if (versionOf("pnpm") === version) return "pnpm"
  if (versionOf(local) === version) return local
  process.stderr.write(`osqueue: installing pnpm ${version} into .tools/ (one time)\n`)
  execFileSync("npm", [
    "install",
    "--no-save",
    "--no-package-lock",
    "--prefix",
    join(root, ".tools"),
    `pnpm@${version}`
  ], {
    stdio: "inherit"
  })
  return local
}

const run = (pnpm, args) => {
  const result = spawnSync(pnpm, args, { stdio: "inherit", cwd: root })
  if (result.status !== 0) process.exit(result.status ?? 1)
}

// Workspace packages the queue never needs, each installed by the script that uses it: the bench
// (BullMQ, ioredis) by `pnpm bench`, the release tooling (changesets) by `pnpm changeset`.
const apart = ["@osqueue/bench", "@osqueue/release"]

const pnpm = findPnpm()
const marker = join(root, "node_modules", ".modules.yaml")
const lock = join(root, "pnpm-lock.yaml")
if (!existsSync(marker) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(marker).mtimeMs)) {
  run(pnpm, [
    "install",
    ...(existsSync(lock) ? ["--frozen-lockfile"] : []),
    ...apart.flatMap((name) => ["--filter", `!${name}`])
  ])
}
run(pnpm, process.argv.slice(2))
