// Test client: the OpenTelemetry JS SDK with its OTLP/HTTP exporters sends spans and
// log records to `ledger serve`, then prints what it sent (ids) as one JSON line.
//   node send.js ENDPOINT proto|json SERVICE_NAME
"use strict";
const { TracerProvider, SimpleSpanProcessor } = require("@opentelemetry/sdk-trace");
const { LoggerProvider, SimpleLogRecordProcessor } = require("@opentelemetry/sdk-logs");
const { resourceFromAttributes } = require("@opentelemetry/resources");
const api = require("@opentelemetry/api");

const [endpoint, protocol, service] = process.argv.slice(2);
const pkg = protocol === "json" ? "http" : "proto";
const { OTLPTraceExporter } = require(`@opentelemetry/exporter-trace-otlp-${pkg}`);
const { OTLPLogExporter } = require(`@opentelemetry/exporter-logs-otlp-${pkg}`);

async function main() {
  const resource = resourceFromAttributes({ "service.name": service, "ledger.project.id": "otel-js",
                                            "ledger.tenant.id": "default" });
  const traceExporter = new OTLPTraceExporter({ url: `${endpoint}/v1/traces` });
  const tp = new TracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor({ exporter: traceExporter })] });
  const tracer = tp.getTracer("otel-js-test", "1.0.0");
  const sent = { spans: [], logs: 0 };
  const root = tracer.startSpan("invoke_agent js-agent", { kind: api.SpanKind.SERVER,
    attributes: { "gen_ai.operation.name": "invoke_agent", "session.id": `${service}-session`, "n": 3 } });
  const ctx = api.trace.setSpan(api.context.active(), root);
  for (let i = 0; i < 3; i++) {
    const child = tracer.startSpan(`execute_tool tool-${i}`, { attributes: { "gen_ai.tool.name": `tool-${i}`,
      "gen_ai.tool.call.id": `call-${i}`, "ok": i !== 2, "ratio": 0.5, "tags": ["a", "b"] } }, ctx);
    child.addEvent("progress", { step: i });
    if (i === 2) child.setStatus({ code: api.SpanStatusCode.ERROR, message: "tool failed" });
    child.end();
    sent.spans.push({ trace_id: child.spanContext().traceId, span_id: child.spanContext().spanId });
  }
  root.end();
  sent.spans.push({ trace_id: root.spanContext().traceId, span_id: root.spanContext().spanId });
  await tp.forceFlush();
  await tp.shutdown();

  const logExporter = new OTLPLogExporter({ url: `${endpoint}/v1/logs` });
  const lp = new LoggerProvider({ resource, processors: [new SimpleLogRecordProcessor({ exporter: logExporter })] });
  const logger = lp.getLogger("otel-js-test", "1.0.0");
  logger.emit({ eventName: "js_agent.user_prompt", body: "make it faster",
                attributes: { "prompt": "make it faster", "session.id": `${service}-session` } });
  logger.emit({ eventName: "js_agent.tool_result", body: "done", severityNumber: 9, severityText: "INFO",
                attributes: { "tool_name": "tool-0", "duration_ms": 12, "session.id": `${service}-session` } });
  sent.logs = 2;
  await lp.forceFlush();
  await lp.shutdown();
  process.stdout.write(JSON.stringify(sent) + "\n");
}

main().catch((err) => { console.error(err); process.exit(1); });
