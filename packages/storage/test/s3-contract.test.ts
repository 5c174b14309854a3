// The ObjectStore contract (test/contract.ts) on a real S3 server: see support/s3.ts for where
// the server is and what happens when it is missing.
import * as S3Store from "../src/S3Store.js"
import { contractSuite } from "./contract.js"
import { describeS3, s3Config, s3Endpoint } from "./support/s3.js"

describeS3(`S3 at ${s3Endpoint}`, () => {
  contractSuite("s3", () => S3Store.layer(s3Config()))
})
