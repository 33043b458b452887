// A minimal OpenTelemetry Collector for the end-to-end export test
// (test/deploy/collector.test.ts), built by scripts/deploy-tools.sh otelcol
// from the Go module proxy. Core modules only, all of one release: the OTLP
// receiver (gRPC and HTTP) and the otlp_http exporter (which forwards what the
// collector decoded to the test's own receiver, where it is checked exactly),
// plus the debug exporter for looking at a run by hand. Configuration from a
// file (--config FILE), with ${env:VAR} references.
package main

import (
	"context"
	"log"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func components() (otelcol.Factories, error) {
	var err error
	f := otelcol.Factories{Telemetry: stderrTelemetry()}
	if f.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](otlpreceiver.NewFactory()); err != nil {
		return f, err
	}
	if f.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](otlphttpexporter.NewFactory(), debugexporter.NewFactory()); err != nil {
		return f, err
	}
	return f, nil
}

// The collector's own telemetry: logs at info level to stderr, no internal
// metrics or traces (nothing listens on a port of its own). The usual
// otelconftelemetry factory would bring in every cloud resource detector.
// It takes no settings: the configuration has no service.telemetry section.
func stderrTelemetry() telemetry.Factory {
	return telemetry.NewFactory(
		func() component.Config { return &struct{}{} },
		telemetry.WithCreateLogger(func(_ context.Context, set telemetry.LoggerSettings, _ component.Config) (*zap.Logger, component.ShutdownFunc, error) {
			cfg := zap.NewProductionConfig()
			cfg.Encoding = "console"
			cfg.Sampling = nil
			cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
			build := set.BuildZapLogger
			if build == nil {
				build = func(c zap.Config, o ...zap.Option) (*zap.Logger, error) { return c.Build(o...) }
			}
			logger, err := build(cfg)
			return logger, nil, err
		}),
	)
}

func main() {
	set := otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "otelcol",
			Description: "otel-rust-agent test collector (OTLP in, otlphttp and debug out)",
			Version:     "0.165.0",
		},
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory()},
				DefaultScheme:     "env",
			},
		},
	}
	if err := otelcol.NewCommand(set).Execute(); err != nil {
		log.Fatal(err)
	}
}
