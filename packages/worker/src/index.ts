export * from "./Handler.js"
export * as WorkerMetrics from "./Metrics.js"
export * as Worker from "./Worker.js"
