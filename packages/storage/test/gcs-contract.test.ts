// The ObjectStore contract (test/contract.ts) on GCS: the stand-in JSON API server through the
// real @google-cloud/storage client by default, or real GCS / fake-gcs-server (support/gcs.ts).
import { afterAll } from "vitest"
import * as GcsStore from "../src/GcsStore.js"
import { contractSuite } from "./contract.js"
import { startGcsTarget } from "./support/gcs.js"

const target = await startGcsTarget()
afterAll(() => target.close())

contractSuite(`gcs (${target.describe})`, () => GcsStore.layer(target.config()))
