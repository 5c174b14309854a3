/* global module */
// @effect/experimental (which @effect/platform-node pulls in) has an optional peer on ioredis,
// for a Redis store osqueue never uses. pnpm links an optional peer that the workspace has
// anywhere, and the bench (scripts/bench) has ioredis: without this hook the queue's own
// install (npm start, which leaves the bench out) would fetch ioredis all the same.
module.exports = {
  hooks: {
    readPackage(pkg) {
      if (pkg.name === "@effect/experimental") {
        if (pkg.peerDependencies) delete pkg.peerDependencies.ioredis
        if (pkg.peerDependenciesMeta) delete pkg.peerDependenciesMeta.ioredis
      }
      return pkg
    }
  }
}
