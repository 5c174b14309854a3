/** Options whose value is JSON: a bad value is refused in one line that names the problem. */
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/** A parse error as one line: each issue's path and message, `; `-separated. */
export const oneLine = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => (issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`))
    .join("; ")

/** `--name` decoded from its text by `schema` (one that parses JSON, e.g. `Schema.parseJson()`). */
export const jsonOption = <A>(name: string, schema: Schema.Schema<A, string>): Options.Options<A> =>
  Options.text(name).pipe(
    Options.withPseudoName("json"),
    Options.mapEffect((text) =>
      Schema.decode(schema)(text).pipe(
        Effect.mapError((error) => ValidationError.invalidValue(HelpDoc.p(`--${name} is not valid: ${oneLine(error)}`)))
      )
    )
  )
