export * from "./Errors.js"
export * from "./Job.js"
export * from "./QueueFile.js"
export * from "./Event.js"
