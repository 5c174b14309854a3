/**
 * Names this process in default worker ids: `host:pid`. Chosen by the `#processName` import
 * (package.json `imports`), so a browser bundle does not pull in `node:os`.
 */
import { hostname } from "node:os"

export const processName = (): string => `${hostname()}:${process.pid}`
