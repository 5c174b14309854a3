/**
 * Where the GCS tests find their server.
 *
 * By default: the stand-in in ./gcs-server.ts, started in-process on a free port, driven through
 * the real @google-cloud/storage client.
 *
 * Against real GCS or fake-gcs-server instead, set
 *   OSQUEUE_TEST_GCS_BUCKET     an existing bucket the tests may write to (objects go under a
 *                               fresh prefix per test)
 *   STORAGE_EMULATOR_HOST       e.g. http://127.0.0.1:4443 for fake-gcs-server (leave unset for
 *   or OSQUEUE_TEST_GCS_ENDPOINT  real GCS, which then uses Application Default Credentials)
 *   OSQUEUE_TEST_GCS_PROJECT    optional project id
 * Tests that need the stand-in's fault injection are skipped in that mode.
 */
import type { GcsStoreConfig } from "../../src/GcsStore.js"
import { type GcsStandIn, startGcsServer } from "./gcs-server.js"
import { testPrefix } from "./s3.js"

export const externalBucket = process.env.OSQUEUE_TEST_GCS_BUCKET
const externalEndpoint = process.env.OSQUEUE_TEST_GCS_ENDPOINT ?? process.env.STORAGE_EMULATOR_HOST

export const standInBucket = "osqueue-test"

export interface GcsTarget {
  /** Present when the tests run against the stand-in. */
  readonly standIn: GcsStandIn | undefined
  readonly describe: string
  readonly config: (overrides?: Partial<GcsStoreConfig>) => GcsStoreConfig
  readonly close: () => Promise<void>
}

export const startGcsTarget = async (options: { readonly pageSize?: number } = {}): Promise<GcsTarget> => {
  if (externalBucket !== undefined) {
    const endpoint = externalEndpoint === undefined
      ? undefined
      : /^https?:\/\//.test(externalEndpoint)
      ? externalEndpoint
      : `http://${externalEndpoint}`
    return {
      standIn: undefined,
      describe: `${endpoint ?? "GCS"} (bucket ${externalBucket})`,
      config: (overrides = {}) => ({
        bucket: externalBucket,
        prefix: testPrefix("gcs"),
        ...(endpoint !== undefined ? { apiEndpoint: endpoint } : {}),
        ...(process.env.OSQUEUE_TEST_GCS_PROJECT !== undefined
          ? { projectId: process.env.OSQUEUE_TEST_GCS_PROJECT }
          : {}),
        ...overrides
      }),
      close: () => Promise.resolve()
    }
  }
  const standIn = await startGcsServer({ buckets: [standInBucket], ...options })
  return {
    standIn,
    describe: `the GCS stand-in at ${standIn.url}`,
    config: (overrides = {}) => ({
      bucket: standInBucket,
      prefix: testPrefix("gcs"),
      apiEndpoint: standIn.url,
      projectId: "test",
      requestTimeout: "5 seconds",
      ...overrides
    }),
    close: standIn.close
  }
}
