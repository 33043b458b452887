// Public API of the export stage.
export {
  createSpanExporter,
  resolveOtlpUrl,
  OtlpSpanSink,
  ConsoleSpanSink,
  DEFAULT_GRPC_ENDPOINT,
  DEFAULT_HTTP_ENDPOINT,
} from './exporter';
export type {
  ExportConfig,
  ExporterKind,
  OtlpProtocol,
  SpanSink,
  SpanSinkStats,
  Compression,
  TlsFiles,
} from './exporter';
export { SpanBatchEncoder, encodeSpan, splitRequest, countSpans } from './otlp/encode';
export type { Transport, TransportOptions, SendResult } from './otlp/transport';
export { ConsoleTreePrinter, formatTraceTree, formatDurationMs, keyAttributes } from './console';
export type { ConsoleTreeOptions, TextOutput } from './console';
export { agentVersion } from '../util/paths';
