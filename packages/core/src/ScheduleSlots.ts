/**
 * When a schedule's runs fall (docs/architecture.md, "Schedules"): the slots of a cron
 * expression in an IANA time zone (cron-parser, which follows the zone's daylight-saving rules),
 * or the multiples of `everyMs` since the Unix epoch. Only the leader computes slots, as it
 * applies a command or creates runs; the state records the next one, so replaying the log never
 * computes any.
 */
import { maxInstant, type ScheduleSpec } from "@osqueue/types"
import { CronExpressionParser } from "cron-parser"

/** A schedule's rule: the fields of a `ScheduleSpec` that say when it runs. */
export type SlotRule = Pick<ScheduleSpec, "cron" | "timezone" | "everyMs">

const utc = "UTC"

/** What is wrong with the rule, or undefined when it has slots: named for the one who sent it. */
export const problemOf = (rule: SlotRule, now: number): string | undefined => {
  if (rule.cron === undefined && rule.everyMs === undefined) {
    return "a schedule needs `cron` (an expression, with an optional `timezone`) or `everyMs` (an interval)"
  }
  if (rule.cron !== undefined && rule.everyMs !== undefined) {
    return "a schedule has either `cron` or `everyMs`, not both"
  }
  if (rule.cron === undefined) {
    return rule.timezone === undefined
      ? undefined
      : "`timezone` applies to a `cron` schedule only: an interval (everyMs) counts from 1970 in UTC"
  }
  if (rule.cron.trim() === "") return "a cron expression must not be blank"
  const zone = rule.timezone ?? utc
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone })
  } catch {
    return `the time zone ${
      JSON.stringify(zone)
    } is not an IANA time zone this broker knows (e.g. "Europe/Paris", "America/New_York", "UTC")`
  }
  try {
    CronExpressionParser.parse(rule.cron, { tz: zone, strict: false })
  } catch (error) {
    return `the cron expression ${JSON.stringify(rule.cron)} is not valid (${
      reason(error)
    }): five fields (minute hour day-of-month month day-of-week), or six with seconds first`
  }
  return nextSlot(rule, now) === undefined
    ? `the cron expression ${JSON.stringify(rule.cron)} has no time after now`
    : undefined
}

const reason = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** The first slot strictly after `after`; undefined when there is none (the rule is bad, or the next is past `maxInstant`). */
export const nextSlot = (rule: SlotRule, after: number): number | undefined => {
  if (rule.everyMs !== undefined) {
    const next = (Math.floor(after / rule.everyMs) + 1) * rule.everyMs
    return next <= maxInstant ? next : undefined
  }
  return cronStep(rule, after, "next")
}

/** The last slot at or before `atOrBefore`; undefined when there is none. */
export const latestSlot = (rule: SlotRule, atOrBefore: number): number | undefined => {
  if (rule.everyMs !== undefined) {
    return atOrBefore < 0 ? undefined : Math.floor(atOrBefore / rule.everyMs) * rule.everyMs
  }
  // `prev` is strictly before its start: start a millisecond later.
  return cronStep(rule, atOrBefore + 1, "prev")
}

const cronStep = (rule: SlotRule, from: number, direction: "next" | "prev"): number | undefined => {
  if (rule.cron === undefined) return undefined
  try {
    const expression = CronExpressionParser.parse(rule.cron, {
      currentDate: new Date(from),
      tz: rule.timezone ?? utc,
      strict: false
    })
    const slot = (direction === "next" ? expression.next() : expression.prev()).getTime()
    return Number.isSafeInteger(slot) && slot >= 0 && slot <= maxInstant ? slot : undefined
  } catch {
    // Past the end of time, or a rule that has no slot left (cron-parser gives up searching).
    return undefined
  }
}
