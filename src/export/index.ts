// Public API of the export stage.
export {
  createSpanExporter,
  resolveOtlpUrl,
  SpanConverter,
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
  SpanExporterLike,
} from './exporter';
export { ConsoleTreePrinter, formatTraceTree, formatDurationMs, keyAttributes } from './console';
export type { ConsoleTreeOptions, TextOutput } from './console';
export { agentVersion } from '../util/paths';
