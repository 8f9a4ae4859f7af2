//! AWS access: one shared SDK configuration and per-region service clients.
//!
//! Credentials, region defaults and the endpoint come from the usual AWS sources
//! (environment, profiles); `AWS_ENDPOINT_URL` points every client at a local
//! emulator. SDK types stay inside this module tree.

pub mod cloud;
pub mod log;
pub mod observe;
pub mod pace;
mod quota;
pub mod s3;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_autoscaling::config::Region as SdkRegion;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::playbook::{AccountSpec, Region};

/// The shared SDK configuration from which region-bound clients are made.
#[derive(Clone, Debug)]
pub struct AwsContext {
    base: SdkConfig,
    settings: Settings,
    /// Where the ambient credentials come from, for the plan's `as:` line; `None`
    /// for a playbook's named account (its own line says how it is reached).
    source: Option<String>,
}

/// How evac talks to AWS.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Requests per second per API; `None` sends calls unpaced (the seeder, against
    /// the local emulator).
    pub rates: Option<pace::Rates>,
}

/// Attempts per call, under the one retry policy every call has: throttling, 5xx,
/// timeouts and lost connections are tried again with exponential backoff and
/// jitter, from [`RETRY_FIRST`] up to [`RETRY_MAX`]; anything else fails at once.
pub const RETRY_ATTEMPTS: u32 = 6;
/// The first backoff of a retried call.
pub const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(500);
/// The time limits of every AWS call (S3 state included): each attempt within
/// [`crate::limits::attempt_timeout`], the call with its retries within
/// [`crate::limits::call_timeout`].
pub fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(crate::limits::attempt_timeout())
        .operation_timeout(crate::limits::call_timeout())
        .build()
}
/// The named profile every AWS call of this process uses (`--profile`), when given.
static PROFILE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes every later AWS call of this process use the named profile of
/// `~/.aws/config` (`--profile`, which wins over `AWS_PROFILE`).
pub fn use_profile(name: &str) {
    let _ = PROFILE.set(name.to_owned());
}

/// The profile given with `--profile`, if any.
pub fn profile() -> Option<&'static str> {
    PROFILE.get().map(String::as_str)
}

/// A non-empty environment variable.
fn env_set(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The credentials of the named profile alone, as the AWS CLI reads them: its keys,
/// its role, its SSO session; never the environment's keys.
fn profile_credentials(name: &str) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(
        aws_config::profile::ProfileFileCredentialsProvider::builder()
            .profile_name(name)
            .build(),
    )
}

/// Which credentials the ambient configuration uses, in the AWS CLI's order:
/// `--profile` over everything; then keys in the environment (before `AWS_PROFILE`);
/// then `AWS_PROFILE`; then the default chain.
fn ambient_source(profile: Option<&str>) -> String {
    if let Some(name) = profile {
        return format!("profile `{name}` (--profile)");
    }
    match (env_set("AWS_ACCESS_KEY_ID"), env_set("AWS_PROFILE")) {
        (Some(_), Some(p)) => format!(
            "environment keys (AWS_ACCESS_KEY_ID; they come before AWS_PROFILE={p}, as in the AWS CLI)"
        ),
        (Some(_), None) => "environment keys (AWS_ACCESS_KEY_ID)".to_owned(),
        (None, Some(p)) => format!("profile `{p}` (AWS_PROFILE)"),
        (None, None) => {
            "the default chain (default profile, SSO, web identity, container or instance role)"
                .to_owned()
        }
    }
}

/// The longest backoff of a retried call.
pub const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(20);

/// The name of the role sessions of `run` (a run id, or `plan`): `evac-RUN`, within
/// the 64 characters and the characters STS allows. A long run id keeps its start
/// (the time) and its end (the random suffix).
pub fn session_name(run: &str) -> String {
    let clean: String = run
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = format!("evac-{clean}");
    if name.len() <= 64 {
        return name;
    }
    // ASCII only by now, so byte offsets are character offsets.
    format!("{}{}", &name[..58], &name[name.len() - 6..])
}

/// `config` with the credentials of `role_arn`, assumed with `config`'s own in a
/// session named `session` (and `external_id`, `duration` when given). The SDK's
/// credentials cache renews the session before it expires.
pub async fn assume_role(
    config: &SdkConfig,
    role_arn: &str,
    session: &str,
    external_id: Option<&str>,
    duration: Option<std::time::Duration>,
) -> SdkConfig {
    let mut role = aws_config::sts::AssumeRoleProvider::builder(role_arn)
        .session_name(session)
        .configure(config);
    if config.region().is_none() {
        role = role.region(SdkRegion::new(home_region(None)));
    }
    if let Some(id) = external_id {
        role = role.external_id(id);
    }
    if let Some(duration) = duration {
        role = role.session_length(duration);
    }
    let provider = role.build().await;
    config
        .to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build()
}

/// Route 53 is a global service whose control plane is in us-east-1.
pub use crate::route53::REGION as ROUTE53_REGION;

/// Regions this process must not call (`--region-down`), and where to go instead.
static STEER: std::sync::OnceLock<(Vec<String>, Vec<String>)> = std::sync::OnceLock::new();

/// Makes every later AWS context of this process keep away from the regions of
/// `down`: its home region (STS, credentials) is the configured one unless that is
/// down, else the first of `instead` that is not.
pub fn avoid_regions(down: &[String], instead: &[String]) {
    let _ = STEER.set((down.to_vec(), instead.to_vec()));
}

/// The region the configuration resolves to (`AWS_REGION`, `AWS_DEFAULT_REGION`,
/// the profile's `region`), when one is set; never the instance metadata.
async fn configured_region(profile: Option<&str>) -> Option<String> {
    use aws_config::meta::region::RegionProviderChain;
    let mut file = aws_config::profile::ProfileFileRegionProvider::builder();
    if let Some(name) = profile {
        file = file.profile_name(name);
    }
    let chain = RegionProviderChain::first_try(
        aws_config::environment::region::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(file.build());
    chain.region().await.map(|r| r.to_string())
}

/// The region STS and the credential providers are reached in: the configured one,
/// else us-east-1, unless that is a region this process must keep away from; then
/// the first region the drill uses that is not (see [`avoid_regions`]). STS answers
/// in every region: an impaired us-east-1 must not stop every command.
pub fn home_region(configured: Option<&str>) -> String {
    let wanted = configured.unwrap_or(ROUTE53_REGION).to_owned();
    let Some((down, instead)) = STEER.get() else {
        return wanted;
    };
    pick_home(&wanted, down, instead)
}

/// [`home_region`]'s choice: `wanted` unless it is `down`, else the first of
/// `instead` (then a few large regions) that is not.
fn pick_home(wanted: &str, down: &[String], instead: &[String]) -> String {
    let fallback = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1"];
    std::iter::once(wanted)
        .chain(instead.iter().map(String::as_str))
        .chain(fallback)
        .find(|r| !down.iter().any(|d| d == r))
        .unwrap_or(wanted)
        .to_owned()
}

impl AwsContext {
    /// Loads the configuration from the environment. `endpoint_url`, when given,
    /// overrides `AWS_ENDPOINT_URL`.
    pub async fn load(endpoint_url: Option<&str>) -> Self {
        Self::load_with(endpoint_url, &Settings::default()).await
    }

    /// Loads the configuration from the environment, paced and retried as `settings`
    /// say. One context serves a whole command, so that its calls share one pace.
    pub async fn load_with(endpoint_url: Option<&str>, settings: &Settings) -> Self {
        Self::load_profile(endpoint_url, settings, profile()).await
    }

    /// Loads the configuration from the environment, with the credentials of the
    /// named profile when one is given.
    async fn load_profile(
        endpoint_url: Option<&str>,
        settings: &Settings,
        profile: Option<&str>,
    ) -> Self {
        let home = home_region(configured_region(profile).await.as_deref());
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).region(SdkRegion::new(home));
        if let Some(name) = profile {
            // The profile's own credentials: keys in the environment do not win
            // over a profile named on the command line or in a playbook.
            loader = loader
                .profile_name(name)
                .credentials_provider(profile_credentials(name));
        }
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(rates) = &settings.rates {
            let pacer = std::sync::Arc::new(pace::Pacer::new(rates.clone()));
            loader = loader.http_client(pace::PacedClient::new(pacer));
        }
        loader = loader
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(RETRY_ATTEMPTS)
                    .with_initial_backoff(RETRY_FIRST)
                    .with_max_backoff(RETRY_MAX),
            )
            .timeout_config(timeouts());
        Self {
            base: loader.load().await,
            settings: settings.clone(),
            source: Some(ambient_source(profile)),
        }
    }

    /// The configuration for a named account of a playbook: its profile's
    /// credentials, or the role assumed from them (from this context's credentials
    /// when it names no profile). The role session is named `session_name`, so that
    /// CloudTrail shows which drill made each call, and is renewed by the SDK's
    /// credentials cache before it expires. AWS limits are per account, so the
    /// account's calls get a pace of their own.
    pub async fn for_account(&self, account: &AccountSpec, session_name: &str) -> Self {
        let endpoint = self.base.endpoint_url().map(str::to_owned);
        let source = match &account.profile {
            Some(profile) => {
                // The plan's `as NAME:` line says how a named account is reached.
                let mut ctx =
                    Self::load_profile(endpoint.as_deref(), &self.settings, Some(profile)).await;
                ctx.source = None;
                ctx
            }
            None => {
                let mut builder = self.base.to_builder();
                if let Some(rates) = &self.settings.rates {
                    let pacer = std::sync::Arc::new(pace::Pacer::new(rates.clone()));
                    builder.set_http_client(Some(
                        aws_smithy_runtime_api::client::http::SharedHttpClient::new(
                            pace::PacedClient::new(pacer),
                        ),
                    ));
                }
                Self {
                    base: builder.build(),
                    settings: self.settings.clone(),
                    source: None,
                }
            }
        };
        let Some(role_arn) = &account.role_arn else {
            return source;
        };
        Self {
            base: assume_role(
                &source.base,
                role_arn,
                session_name,
                account.external_id.as_deref(),
                account.duration.map(|d| d.0),
            )
            .await,
            settings: source.settings,
            source: None,
        }
    }

    /// A configuration with fixed credentials and endpoint, for talking to a local
    /// emulator (each test uses its own emulated account).
    pub async fn with_static_credentials(
        endpoint_url: &str,
        access_key: &str,
        secret_key: &str,
    ) -> Self {
        let credentials = aws_credential_types::Credentials::new(
            access_key,
            secret_key,
            None,
            None,
            "evac-static",
        );
        let base = aws_config::defaults(BehaviorVersion::latest())
            .region(SdkRegion::new(home_region(None)))
            .endpoint_url(endpoint_url)
            .credentials_provider(credentials)
            .load()
            .await;
        Self {
            base,
            settings: Settings::default(),
            source: None,
        }
    }

    /// Resolves the credentials once, before any call, so that missing ones are one
    /// sentence naming the fix rather than the SDK's account of every provider it
    /// tried.
    pub async fn check_credentials(&self) -> Result<(), String> {
        use aws_credential_types::provider::ProvideCredentials;
        let found = match self.base.credentials_provider() {
            Some(provider) => provider.provide_credentials().await.is_ok(),
            None => false,
        };
        // A profile named in AWS_PROFILE must exist and give credentials even where
        // keys in the environment come first: a typo must not run the drill as
        // whoever the environment is.
        if found
            && profile().is_none()
            && env_set("AWS_ACCESS_KEY_ID").is_some()
            && let Some(name) = env_set("AWS_PROFILE")
            && profile_credentials(&name)
                .provide_credentials()
                .await
                .is_err()
        {
            return Err(format!(
                "no AWS credentials for profile `{name}` (from AWS_PROFILE): it is not in ~/.aws/config or ~/.aws/credentials, or gives no credentials; name a profile that exists, or unset AWS_PROFILE to use the keys in the environment"
            ));
        }
        if found {
            return Ok(());
        }
        if let Some(name) = profile() {
            return Err(format!(
                "no AWS credentials for profile `{name}` (from --profile): it is not in ~/.aws/config or ~/.aws/credentials, or gives no credentials; name a profile that exists"
            ));
        }
        Err(match std::env::var("AWS_PROFILE") {
            Ok(profile) if !profile.is_empty() => format!(
                "no AWS credentials for profile `{profile}` (from AWS_PROFILE): it is not in ~/.aws/config or ~/.aws/credentials, or gives no credentials; name a profile that exists, or unset AWS_PROFILE"
            ),
            _ => "no AWS credentials found: set AWS_PROFILE to a profile of ~/.aws/config, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an instance or task role is available".to_owned(),
        })
    }

    /// Where this configuration's credentials come from, said in the plan.
    pub fn credentials_source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// The region STS and the credential providers are reached in.
    pub fn home_region(&self) -> Option<String> {
        self.base.region().map(ToString::to_string)
    }

    /// The endpoint every client talks to, when one is set.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.base.endpoint_url()
    }

    /// An Auto Scaling client for `region`.
    pub fn autoscaling(&self, region: &Region) -> aws_sdk_autoscaling::Client {
        let config = aws_sdk_autoscaling::config::Builder::from(&self.base)
            .region(SdkRegion::new(region.as_str().to_owned()))
            .interceptor(log::CallLog)
            .interceptor(log::UserAgent)
            .interceptor(log::Pulse)
            .build();
        aws_sdk_autoscaling::Client::from_conf(config)
    }

    /// An EC2 client for `region`.
    pub fn ec2(&self, region: &Region) -> aws_sdk_ec2::Client {
        let config = aws_sdk_ec2::config::Builder::from(&self.base)
            .region(SdkRegion::new(region.as_str().to_owned()))
            .interceptor(log::CallLog)
            .interceptor(log::UserAgent)
            .interceptor(log::Pulse)
            .build();
        aws_sdk_ec2::Client::from_conf(config)
    }

    /// An Elastic Load Balancing (v2: target groups) client for `region`.
    pub fn elbv2(&self, region: &Region) -> aws_sdk_elasticloadbalancingv2::Client {
        let config = aws_sdk_elasticloadbalancingv2::config::Builder::from(&self.base)
            .region(SdkRegion::new(region.as_str().to_owned()))
            .interceptor(log::CallLog)
            .interceptor(log::UserAgent)
            .interceptor(log::Pulse)
            .build();
        aws_sdk_elasticloadbalancingv2::Client::from_conf(config)
    }

    /// An ARC zonal shift client for `region`.
    pub fn arc(&self, region: &Region) -> aws_sdk_arczonalshift::Client {
        let config = aws_sdk_arczonalshift::config::Builder::from(&self.base)
            .region(SdkRegion::new(region.as_str().to_owned()))
            .interceptor(log::CallLog)
            .interceptor(log::UserAgent)
            .interceptor(log::Pulse)
            .build();
        aws_sdk_arczonalshift::Client::from_conf(config)
    }

    /// A Classic Load Balancer client for `region`.
    pub fn elb(&self, region: &Region) -> aws_sdk_elasticloadbalancing::Client {
        let config = aws_sdk_elasticloadbalancing::config::Builder::from(&self.base)
            .region(SdkRegion::new(region.as_str().to_owned()))
            .interceptor(log::CallLog)
            .interceptor(log::UserAgent)
            .interceptor(log::Pulse)
            .build();
        aws_sdk_elasticloadbalancing::Client::from_conf(config)
    }

    /// A Service Quotas client for `region`.
    pub fn servicequotas(&self, region: &Region) -> aws_sdk_servicequotas::Client {
        let config = aws_sdk_servicequotas::config::Builder::from(&self.base)
            .region(SdkRegion::new(region.as_str().to_owned()))
            .interceptor(log::CallLog)
            .interceptor(log::UserAgent)
            .interceptor(log::Pulse)
            .build();
        aws_sdk_servicequotas::Client::from_conf(config)
    }

    /// A CloudWatch client for `region`.
    pub fn cloudwatch(&self, region: &Region) -> aws_sdk_cloudwatch::Client {
        let config = aws_sdk_cloudwatch::config::Builder::from(&self.base)
            .region(SdkRegion::new(region.as_str().to_owned()))
            .interceptor(log::CallLog)
            .interceptor(log::UserAgent)
            .interceptor(log::Pulse)
            .build();
        aws_sdk_cloudwatch::Client::from_conf(config)
    }

    /// An SNS client for `region` (a topic's).
    pub fn sns(&self, region: &str) -> aws_sdk_sns::Client {
        let config = aws_sdk_sns::config::Builder::from(&self.base)
            .region(SdkRegion::new(region.to_owned()))
            .interceptor(log::CallLog)
            .interceptor(log::UserAgent)
            .interceptor(log::Pulse)
            .build();
        aws_sdk_sns::Client::from_conf(config)
    }

    /// An EventBridge client for `region`.
    pub fn eventbridge(&self, region: &str) -> aws_sdk_eventbridge::Client {
        let config = aws_sdk_eventbridge::config::Builder::from(&self.base)
            .region(SdkRegion::new(region.to_owned()))
            .interceptor(log::CallLog)
            .interceptor(log::UserAgent)
            .interceptor(log::Pulse)
            .build();
        aws_sdk_eventbridge::Client::from_conf(config)
    }

    /// The STS client, at the regional endpoint of the home region
    /// ([`home_region`]).
    pub fn sts(&self) -> aws_sdk_sts::Client {
        let config = aws_sdk_sts::config::Builder::from(&self.base)
            .interceptor(log::CallLog)
            .interceptor(log::UserAgent)
            .interceptor(log::Pulse)
            .build();
        aws_sdk_sts::Client::from_conf(config)
    }

    /// The Route 53 client (a global service, its control plane in us-east-1).
    pub fn route53(&self) -> aws_sdk_route53::Client {
        let config = aws_sdk_route53::config::Builder::from(&self.base)
            .region(SdkRegion::new(ROUTE53_REGION))
            .interceptor(log::CallLog)
            .interceptor(log::UserAgent)
            .interceptor(log::Pulse)
            .build();
        aws_sdk_route53::Client::from_conf(config)
    }
}

/// Renders an SDK error for people, in one sentence with the fix where there is a
/// known one: `Code: message` for an error AWS answered with (plus what to do for
/// expired, invalid or insufficient credentials); for AWS that could not be reached,
/// the innermost cause and what to check. Never the SDK's debug dump.
pub fn sdk_error_text<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            let said = match (inner.code(), inner.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                _ => {
                    // No code to show: say at least what HTTP status came back.
                    let raw: &dyn std::any::Any = service.raw();
                    return match raw
                        .downcast_ref::<aws_smithy_runtime_api::client::orchestrator::HttpResponse>(
                        ) {
                        Some(response) => format!(
                            "HTTP {} with no error code; try again, and check the service's health if it goes on",
                            response.status().as_u16()
                        ),
                        None => DisplayErrorContext(err).to_string(),
                    };
                }
            };
            match inner.code().and_then(fix_for_code) {
                Some(fix) => format!("{said}; {fix}"),
                None => said,
            }
        }
        SdkError::DispatchFailure(failure) => {
            let why = if failure.is_timeout() {
                "the connection timed out".to_owned()
            } else {
                innermost(err)
            };
            format!(
                "cannot reach AWS ({why}); check the network and any proxy (HTTPS_PROXY), and AWS_ENDPOINT_URL if it is set"
            )
        }
        SdkError::TimeoutError(_) => {
            "AWS did not answer in time; check the network, then try again".to_owned()
        }
        _ => DisplayErrorContext(err).to_string(),
    }
}

/// Whether an SDK error says the service did not answer, or answered only that it
/// is failing: a timeout, a lost or refused connection, a 5xx. What a region that
/// is down does, as opposed to a refusal (denied, invalid, throttled).
pub fn unanswered<E, R>(err: &SdkError<E, R>) -> bool
where
    R: std::fmt::Debug + 'static,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            let raw: &dyn std::any::Any = service.raw();
            raw.downcast_ref::<aws_smithy_runtime_api::client::orchestrator::HttpResponse>()
                .is_some_and(|r| r.status().is_server_error())
        }
        _ => false,
    }
}

/// What to do about an error code that says the credentials are the problem.
fn fix_for_code(code: &str) -> Option<&'static str> {
    match code {
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => Some(
            "the AWS session has expired: refresh it (for example `aws sso login --profile NAME`) or get new credentials",
        ),
        "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch"
        | "AuthFailure"
        | "IncompleteSignature"
        | "InvalidAccessKeyId" => Some(
            "the AWS credentials are not valid: check AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ),
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => Some(
            "the credentials in use lack this IAM permission: grant it to the role or user, or use a profile that has it",
        ),
        _ => None,
    }
}

/// The innermost cause of an error: `Connection refused (os error 111)` rather than
/// the chain of wrappers around it.
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Lists every record set of a hosted zone, 300 a page, handing each to `each`; with
/// `max_pages`, stops after that many pages. Returns whether the listing is complete.
pub async fn list_zone(
    client: &aws_sdk_route53::Client,
    zone_id: &str,
    max_pages: Option<usize>,
    mut each: impl FnMut(&aws_sdk_route53::types::ResourceRecordSet),
) -> Result<
    bool,
    aws_sdk_route53::error::SdkError<
        aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsError,
    >,
> {
    let mut next: Option<(String, aws_sdk_route53::types::RrType, Option<String>)> = None;
    for _ in 0..max_pages.unwrap_or(usize::MAX) {
        let mut request = client
            .list_resource_record_sets()
            .hosted_zone_id(zone_id)
            .max_items(300);
        if let Some((name, kind, id)) = &next {
            request = request
                .start_record_name(name)
                .start_record_type(kind.clone())
                .set_start_record_identifier(id.clone());
        }
        let page = request.send().await?;
        for set in page.resource_record_sets() {
            each(set);
        }
        if !page.is_truncated() {
            return Ok(true);
        }
        next = match (page.next_record_name(), page.next_record_type()) {
            (Some(n), Some(t)) => Some((
                n.to_owned(),
                t.clone(),
                page.next_record_identifier().map(str::to_owned),
            )),
            _ => return Ok(true),
        };
    }
    Ok(false)
}

/// A DNS name as Route 53 compares it: lower case, fully qualified.
pub fn normalize_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

/// Lists the record sets of one name and type in a hosted zone, starting the listing
/// there and stopping past it, handing each to `each`.
pub async fn list_record(
    client: &aws_sdk_route53::Client,
    zone_id: &str,
    name: &str,
    record_type: &aws_sdk_route53::types::RrType,
    mut each: impl FnMut(&aws_sdk_route53::types::ResourceRecordSet),
) -> Result<
    (),
    aws_sdk_route53::error::SdkError<
        aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsError,
    >,
> {
    let wanted = normalize_name(name);
    let mut start_id: Option<String> = None;
    loop {
        let page = client
            .list_resource_record_sets()
            .hosted_zone_id(zone_id)
            .start_record_name(name)
            .start_record_type(record_type.clone())
            .set_start_record_identifier(start_id.clone())
            .max_items(300)
            .send()
            .await?;
        let mut past = false;
        for set in page.resource_record_sets() {
            if normalize_name(set.name()) != wanted || set.r#type() != record_type {
                past = true;
                continue;
            }
            each(set);
        }
        if past
            || !page.is_truncated()
            || page.next_record_name().map(normalize_name).as_ref() != Some(&wanted)
        {
            return Ok(());
        }
        start_id = page.next_record_identifier().map(str::to_owned);
    }
}

#[cfg(test)]
mod home_tests {
    use super::pick_home;

    #[test]
    fn the_home_region_keeps_away_from_a_region_that_is_down() {
        let down = |r: &[&str]| r.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(pick_home("eu-west-1", &[], &[]), "eu-west-1");
        assert_eq!(
            pick_home(
                "us-east-1",
                &down(&["us-east-1"]),
                &down(&["us-east-1", "us-west-2"])
            ),
            "us-west-2"
        );
        assert_eq!(
            pick_home("eu-west-1", &down(&["eu-west-1"]), &down(&["eu-central-1"])),
            "eu-central-1"
        );
        assert_eq!(
            pick_home("us-east-1", &down(&["us-east-1"]), &[]),
            "us-west-2"
        );
    }
}
