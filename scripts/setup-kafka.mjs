#!/usr/bin/env node
// Builds the Kafka client's native binding (from source, CKJS_LINKING=dynamic) and the mock cluster binary.
// Owned by the Kafka backend; see docs/kafka.md.
console.log("[setup] kafka: nothing to build yet");
