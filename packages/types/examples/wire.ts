/**
 * What travels between clients and brokers, checked with the schemas both sides use: an enqueue
 * request decoded from untrusted JSON (a typo is refused by name), and an error answer decoded
 * into its tagged class, with its HTTP status and whether to retry. Run from the repo root:
 * `pnpm exec tsx --conditions=source packages/types/examples/wire.ts`.
 */
import { EnqueueOptions, httpStatus, isRetryable, OsqueueError } from "@osqueue/types"
import { Either, ParseResult, Schema } from "effect"

const decodeEnqueue = Schema.decodeUnknownEither(Schema.parseJson(EnqueueOptions))

const good = decodeEnqueue(
  "{\"type\":\"email\",\"payload\":{\"to\":\"a@example.com\"},\"priority\":5,\"delayMs\":1000}"
)
if (Either.isRight(good)) console.log(`enqueue ${good.right.type} at priority ${good.right.priority}`)

// Unknown fields are refused, not ignored: "priorty" must not silently mean priority 0.
const typo = decodeEnqueue("{\"type\":\"email\",\"priorty\":5}")
if (Either.isLeft(typo)) {
  for (const issue of ParseResult.ArrayFormatter.formatErrorSync(typo.left)) {
    console.log(`refused: ${issue.path.join(".")} ${issue.message}`)
  }
}

// An error body as a broker answers it (here a 503): a tagged class with a message saying what to do.
const answer = Schema.decodeUnknownSync(Schema.parseJson(OsqueueError))(
  "{\"_tag\":\"QueueFull\",\"bytes\":300000000,\"limit\":268435456}"
)
console.log(`${answer._tag} (HTTP ${httpStatus(answer)}, retry: ${isRetryable(answer)}): ${answer.message}`)
