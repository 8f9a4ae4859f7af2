//! Client-side pacing: every AWS call waits for its API's turn, so a fleet-size run
//! stays inside AWS's request rates instead of provoking throttling and paying for it
//! in retries.
//!
//! AWS meters requests with token buckets: Route 53 per account (all its APIs
//! together, 5 requests a second), Auto Scaling, EC2 and CloudWatch per account and
//! region (rates not published). Each [`Api`] here is one such bucket, paced with the
//! generic cell rate algorithm (a token bucket kept as one "next free slot" time).
//! The burst stays a fifth of a second of requests below AWS's (see [`burst`]), so
//! that calls bunched up on their way never find AWS's bucket empty.
//!
//! Time is tokio's, so pacing runs on a paused clock in tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use tokio::time::Instant;

pub use crate::rates::{MIN_RATE, REGIONAL_RATE, ROUTE53_RATE, Rates, Service, burst};

/// A rate-limited AWS API: one token bucket.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Api {
    /// Route 53 (global, one bucket per account).
    Route53,
    /// Auto Scaling in a region.
    AutoScaling(String),
    /// EC2 in a region.
    Ec2(String),
    /// CloudWatch in a region.
    CloudWatch(String),
    /// Elastic Load Balancing (both kinds) in a region.
    Elb(String),
}

impl Api {
    fn service(&self) -> Service {
        match self {
            Api::Route53 => Service::Route53,
            Api::AutoScaling(_) => Service::AutoScaling,
            Api::Ec2(_) => Service::Ec2,
            Api::CloudWatch(_) => Service::CloudWatch,
            Api::Elb(_) => Service::Elb,
        }
    }
}

/// Paces calls per [`Api`].
#[derive(Debug, Default)]
pub struct Pacer {
    rates: Rates,
    /// Per API: the theoretical arrival time of the next request (GCRA).
    next: Mutex<BTreeMap<Api, Instant>>,
}

impl Pacer {
    /// A pacer with these rates.
    pub fn new(rates: Rates) -> Self {
        Self {
            rates,
            next: Mutex::default(),
        }
    }

    /// How long a call to `api` made now must wait, with its slot reserved.
    fn reserve(&self, api: &Api) -> Duration {
        let rate = self.rates.of(api.service());
        let interval = Duration::from_secs_f64(1.0 / rate);
        let tolerance = interval.mul_f64(burst(rate) - 1.0);
        let now = Instant::now();
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let tat = next.get(api).copied().unwrap_or(now).max(now);
        let earliest = tat.checked_sub(tolerance).unwrap_or(now).max(now);
        next.insert(api.clone(), tat + interval);
        earliest - now
    }

    /// Waits until a call to `api` may go out.
    pub async fn wait(&self, api: Api) {
        let wait = self.reserve(&api);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn route53_calls_go_out_at_five_a_second_after_a_burst_of_four() {
        let pacer = Pacer::default();
        let start = Instant::now();
        let mut sent = Vec::new();
        for _ in 0..14 {
            pacer.wait(Api::Route53).await;
            sent.push(start.elapsed());
        }
        // Four at once, then one every 200 ms.
        assert_eq!(&sent[..4], &[Duration::ZERO; 4]);
        assert_eq!(sent[4], Duration::from_millis(200));
        assert_eq!(sent[13], Duration::from_millis(2000));
        // AWS's bucket (5 tokens, 5 a second) always has a token, with one to spare.
        let (mut tokens, mut last) = (5.0_f64, Duration::ZERO);
        for at in sent {
            tokens = (tokens + (at - last).as_secs_f64() * 5.0).min(5.0) - 1.0;
            last = at;
            assert!(tokens >= 1.0 - 1e-9, "{tokens} tokens left at {at:?}");
        }
    }

    #[test]
    fn the_burst_keeps_a_fifth_of_a_second_spare() {
        assert_eq!(burst(5.0), 4.0);
        assert_eq!(burst(20.0), 16.0);
        assert_eq!(burst(2.0), 1.0);
        assert_eq!(burst(0.5), 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn regions_and_services_are_paced_apart() {
        let pacer = Pacer::new(Rates(BTreeMap::from([(Service::AutoScaling, 2.0)])));
        let start = Instant::now();
        for _ in 0..3 {
            pacer.wait(Api::AutoScaling("us-east-1".into())).await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(1), "2/s, burst 1");
        let before = start.elapsed();
        pacer.wait(Api::AutoScaling("us-west-2".into())).await;
        pacer.wait(Api::Route53).await;
        assert_eq!(start.elapsed(), before, "other buckets are full");
    }

    #[test]
    fn rates_are_parsed_and_bounded() {
        assert_eq!(
            Rates::parse_one("autoscaling=50"),
            Ok((Service::AutoScaling, 50.0))
        );
        assert!(Rates::parse_one("route53=0").is_err());
        assert!(Rates::parse_one("route53=NaN").is_err());
        assert!(Rates::parse_one("s3=5").is_err());
        assert!(Rates::parse_one("route53").is_err());
    }
}

/// The SDK's HTTPS client with every request paced: one place that sees every call
/// (paginated pages and the SDK's own retries included). The API is read from the
/// request's signature scope (`Credential=KEY/DATE/REGION/SERVICE/...`), which works
/// against any endpoint.
#[derive(Debug)]
pub struct PacedClient {
    inner: SharedHttpClient,
    pacer: Arc<Pacer>,
}

impl PacedClient {
    /// The default HTTPS client (rustls with aws-lc, as the SDK's own default), paced.
    pub fn new(pacer: Arc<Pacer>) -> Self {
        use aws_smithy_http_client::tls;
        let inner = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https();
        Self { inner, pacer }
    }
}

impl HttpClient for PacedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(PacedConnector {
            inner: self.inner.http_connector(settings, components),
            pacer: self.pacer.clone(),
        })
    }
}

#[derive(Debug)]
struct PacedConnector {
    inner: SharedHttpConnector,
    pacer: Arc<Pacer>,
}

impl HttpConnector for PacedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let api = request
            .headers()
            .get("authorization")
            .and_then(api_of_signature);
        let (inner, pacer) = (self.inner.clone(), self.pacer.clone());
        HttpConnectorFuture::new(async move {
            if let Some(api) = api {
                pacer.wait(api).await;
            }
            inner.call(request).await
        })
    }
}

/// The API of a signed request, from its SigV4 credential scope.
pub fn api_of_signature(authorization: &str) -> Option<Api> {
    let scope = authorization.split("Credential=").nth(1)?;
    let mut parts = scope.split('/');
    let (_key, _date) = (parts.next()?, parts.next()?);
    let region = parts.next()?.to_owned();
    match parts.next()? {
        "route53" => Some(Api::Route53),
        "autoscaling" => Some(Api::AutoScaling(region)),
        "ec2" => Some(Api::Ec2(region)),
        "monitoring" => Some(Api::CloudWatch(region)),
        "elasticloadbalancing" => Some(Api::Elb(region)),
        _ => None,
    }
}

#[cfg(test)]
mod signature_tests {
    use super::*;

    #[test]
    fn the_api_is_read_from_the_signature_scope() {
        let auth = |scope: &str| {
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIA/20261126/{scope}/aws4_request, SignedHeaders=host, Signature=0"
            )
        };
        assert_eq!(
            api_of_signature(&auth("us-east-1/route53")),
            Some(Api::Route53)
        );
        assert_eq!(
            api_of_signature(&auth("us-west-2/autoscaling")),
            Some(Api::AutoScaling("us-west-2".into()))
        );
        assert_eq!(
            api_of_signature(&auth("eu-west-1/monitoring")),
            Some(Api::CloudWatch("eu-west-1".into()))
        );
        assert_eq!(api_of_signature(&auth("us-east-1/sts")), None);
        assert_eq!(api_of_signature("Bearer x"), None);
    }
}
