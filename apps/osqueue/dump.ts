import { probeAt, probes } from "./test/support/fuzz/generate.ts"
import { LeasePool, render, encode } from "./test/support/fuzz/templates.ts"
import { writeFileSync } from "node:fs"
const [seed, index, first, count] = process.argv.slice(2).map(Number)
const ids = Array.from({ length: 100 }, (_, i) => `job-${first! + i}`)
const arb = probes({ fuzzIds: ids, isSentinel: (id) => { const n = Number(id.replace("job-", "")); return n >= 1 && n <= count! }, token: undefined })
const p = probeAt(arb, seed!, index!)
console.log(p.what)
const probe = p.probe as any
console.log(JSON.stringify(probe.headers), probe.path)
writeFileSync("/tmp/probe-body.txt", encode(render(probe.body ?? "", new LeasePool()), probe.encoding))
