//! Logs to standard error and, when an OTLP endpoint is given, the same spans to an
//! OpenTelemetry collector (OTLP over HTTP, protobuf).
//!
//! Set up before the Tokio runtime starts and shut down after it stops: the exporter is a
//! blocking HTTP client on the batch processor's own thread, so span export never takes a
//! runtime worker, and a collector that is down costs dropped spans (the batch queue is bounded
//! at the SDK's 2,048), never a slower request.

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// What `init` set up; `shutdown` flushes the spans still queued.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports what is still queued (bounded by the exporter's timeout) and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            eprintln!("chorus: flushing spans to the OTLP endpoint failed: {error}");
        }
    }
}

/// The OTLP/HTTP traces URL for an endpoint given as OpenTelemetry's
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is: a base URL (`http://collector:4318`) gets `/v1/traces`; a
/// URL that already names the traces path is kept.
pub fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    }
}

/// Installs the global subscriber: the log (`json` or human-readable, filtered by `RUST_LOG`,
/// default `info,openraft=warn`) and, with `otlp_endpoint`, span export under the service name
/// `chorus`. The filter applies to both, so `RUST_LOG` also chooses which spans are exported.
pub fn init(json: bool, otlp_endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=warn"));
    // Logs go to standard error so `chorus connect` keeps standard output for frames.
    let log = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let log = if json {
        log.json().boxed()
    } else {
        log.boxed()
    };
    let provider = otlp_endpoint.map(tracer_provider).transpose()?;
    let spans = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("chorus")));
    tracing_subscriber::registry()
        .with(filter)
        .with(log)
        .with(spans)
        .try_init()
        .context("cannot install the tracing subscriber")?;
    Ok(Telemetry { provider })
}

fn tracer_provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .build()
        .with_context(|| format!("cannot set up OTLP export to {endpoint}"))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("chorus").build())
        .build())
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn a_base_endpoint_gets_the_traces_path() {
        assert_eq!(
            traces_url("http://collector:4318"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
    }

    #[test]
    fn a_traces_url_is_kept() {
        assert_eq!(
            traces_url("https://otel.example.com/v1/traces"),
            "https://otel.example.com/v1/traces"
        );
    }
}
