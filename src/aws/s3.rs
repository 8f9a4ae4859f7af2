//! [`ObjectStore`] on S3, for team state (`--state-dir s3://BUCKET/PREFIX`).
//!
//! The journal and the locks are written from synchronous code, both inside and
//! outside the engine's runtime, so the store keeps a small runtime of its own and
//! each call waits for its answer there. Region and credentials come from the usual
//! chain (`AWS_REGION`, `AWS_PROFILE`, ...); the bucket may be in another region
//! than the drill. `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`) points it at
//! another endpoint, addressed path-style.

use std::future::Future;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

use super::sdk_error_text;
use crate::journal::remote::{Created, ObjectStore, StoreError};

/// A prefix of an S3 bucket.
pub struct S3Store {
    client: Client,
    bucket: String,
    /// The prefix, with a trailing `/` unless empty.
    prefix: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.location())
    }
}

/// Attempts per S3 call: few, so that a run whose state store stopped answering
/// stops within seconds rather than minutes.
const ATTEMPTS: u32 = 3;

impl S3Store {
    /// Connects to `bucket` under `prefix`, in `region` when given (the bucket's
    /// own: the state stays reachable when the drill's home region is down),
    /// through `role` when given (a bucket in another account; the session is named
    /// `evac-state` and renewed before it expires).
    pub fn connect(
        bucket: &str,
        prefix: &str,
        region: Option<&str>,
        role: Option<&str>,
    ) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("evac-s3")
            .enable_all()
            .build()
            .map_err(|e| format!("failed to start the S3 client's runtime: {e}"))?;
        // Not block_on: this may be called inside another runtime.
        let (tx, rx) = std::sync::mpsc::channel();
        let profile = super::profile();
        let role = role.map(str::to_owned);
        let bucket_region = region.map(str::to_owned);
        runtime.spawn(async move {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
            if let Some(region) = &bucket_region {
                loader = loader.region(aws_sdk_s3::config::Region::new(region.clone()));
            }
            if let Some(name) = profile {
                loader = loader.profile_name(name);
            }
            let config = loader
                .retry_config(
                    aws_config::retry::RetryConfig::standard()
                        .with_max_attempts(ATTEMPTS)
                        .with_initial_backoff(std::time::Duration::from_millis(200)),
                )
                .timeout_config(super::timeouts())
                .load()
                .await;
            let config = match role {
                None => config,
                Some(role) => super::assume_role(&config, &role, "evac-state", None, None).await,
            };
            let _ = tx.send(config);
        });
        let config = rx
            .recv()
            .map_err(|_| "failed to load the AWS configuration for S3".to_owned())?;
        let mut builder = aws_sdk_s3::config::Builder::from(&config);
        if config.region().is_none() {
            builder = builder.region(aws_sdk_s3::config::Region::new(super::home_region(None)));
        }
        // Local endpoints do not resolve bucket subdomains.
        let custom = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|u| !u.is_empty()));
        if custom {
            builder = builder.force_path_style(true);
        }
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let builder = builder
            .interceptor(super::log::CallLog)
            .interceptor(super::log::UserAgent);
        Ok(Self {
            client: Client::from_conf(builder.build()),
            bucket: bucket.to_owned(),
            prefix,
            runtime: Some(runtime),
        })
    }

    /// Runs `call` on the store's runtime and waits for it.
    fn wait<T: Send + 'static>(
        &self,
        call: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let Some(runtime) = &self.runtime else {
            return Err(StoreError {
                what: "reach S3".into(),
                message: "the S3 client was shut down".into(),
            });
        };
        let (tx, rx) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            let _ = tx.send(call.await);
        });
        rx.recv().map_err(|_| StoreError {
            what: "reach S3".into(),
            message: "the S3 call was dropped".into(),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn fail<E, R>(
        &self,
        what: &str,
        key: &str,
        err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> StoreError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        StoreError {
            what: format!("{what} s3://{}/{}", self.bucket, self.key(key)),
            message: sdk_error_text(err),
        }
    }
}

impl Drop for S3Store {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is not allowed inside another runtime.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

type HttpResponse = aws_smithy_runtime_api::client::orchestrator::HttpResponse;

/// The HTTP status of an S3 error answer.
fn status<E>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, HttpResponse>,
) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// Whether an S3 error is a failed precondition (412).
fn precondition<E>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, HttpResponse>,
) -> bool {
    status(err) == Some(412)
}

/// Whether an S3 error is a conflicting concurrent conditional request (409): to
/// be tried again.
fn conflict<E>(err: &aws_smithy_runtime_api::client::result::SdkError<E, HttpResponse>) -> bool {
    status(err) == Some(409)
}

fn etag(tag: Option<&str>) -> String {
    tag.unwrap_or_default().trim_matches('"').to_owned()
}

impl ObjectStore for S3Store {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix.trim_end_matches('/'))
    }

    fn create(&self, key: &str, body: &[u8]) -> Result<Created, StoreError> {
        let request = || {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(self.key(key))
                .if_none_match("*")
                .body(ByteStream::from(body.to_vec()))
        };
        for _ in 0..CONFLICT_TRIES {
            match self.wait(request().send())? {
                Ok(answer) => return Ok(Created::Yes(etag(answer.e_tag()))),
                Err(err) if conflict(&err) => continue,
                Err(err) if precondition(&err) => {
                    return Ok(match self.landed(key, body)? {
                        Some(tag) => Created::Yes(tag),
                        None => Created::AlreadyThere,
                    });
                }
                Err(err) => return Err(self.fail("create", key, &err)),
            }
        }
        Err(self.conflicted("create", key))
    }

    fn replace(&self, key: &str, body: &[u8], tag: &str) -> Result<Option<String>, StoreError> {
        let request = || {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(self.key(key))
                .if_match(format!("\"{tag}\""))
                .body(ByteStream::from(body.to_vec()))
        };
        for _ in 0..CONFLICT_TRIES {
            match self.wait(request().send())? {
                Ok(answer) => return Ok(Some(etag(answer.e_tag()))),
                Err(err) if conflict(&err) => continue,
                Err(err) if precondition(&err) => return self.landed(key, body),
                Err(err)
                    if err.as_service_error().is_some_and(|e| {
                        aws_smithy_types::error::metadata::ProvideErrorMetadata::code(e)
                            == Some("NoSuchKey")
                    }) =>
                {
                    return Ok(None);
                }
                Err(err) => return Err(self.fail("replace", key, &err)),
            }
        }
        Err(self.conflicted("replace", key))
    }

    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(key));
        let answer = self.wait(async move {
            let answer = request.send().await?;
            let tag = etag(answer.e_tag());
            let body = answer.body.collect().await;
            Ok::<_, aws_smithy_runtime_api::client::result::SdkError<_, _>>((body, tag))
        })?;
        match answer {
            Ok((Ok(body), tag)) => Ok(Some((body.into_bytes().to_vec(), tag))),
            Ok((Err(err), _)) => Err(StoreError {
                what: format!("read s3://{}/{}", self.bucket, self.key(key)),
                message: err.to_string(),
            }),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(err) => Err(self.fail("read", key, &err)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.key(prefix))
            .into_paginator()
            .send();
        let answer = self.wait(async move { pages.collect::<Vec<_>>().await })?;
        let mut keys = Vec::new();
        for page in answer {
            let page = page.map_err(|err| self.fail("list", prefix, &err))?;
            for object in page.contents() {
                if let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    keys.push(key.to_owned());
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn children(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let full = self.key(prefix);
        let pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full)
            .delimiter("/")
            .into_paginator()
            .send();
        let answer = self.wait(async move { pages.collect::<Vec<_>>().await })?;
        let mut names = Vec::new();
        for page in answer {
            let page = page.map_err(|err| self.fail("list", prefix, &err))?;
            for common in page.common_prefixes() {
                if let Some(name) = common
                    .prefix()
                    .and_then(|p| p.strip_prefix(&full))
                    .map(|p| p.trim_end_matches('/'))
                {
                    names.push(name.to_owned());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn delete(&self, key: &str, tag: &str) -> Result<(), StoreError> {
        let request = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .if_match(format!("\"{tag}\""));
        for _ in 0..CONFLICT_TRIES {
            match self.wait(request.clone().send())? {
                Ok(_) => return Ok(()),
                Err(err) if conflict(&err) => continue,
                // Changed by another (not this process's to delete), or already
                // gone: a retried delete whose first attempt landed answers 404.
                Err(err) if precondition(&err) || status(&err) == Some(404) => return Ok(()),
                Err(err) => return Err(self.fail("delete", key, &err)),
            }
        }
        Err(self.conflicted("delete", key))
    }
}

/// How many times a conditional request answered 409 `ConditionalRequestConflict`
/// (a concurrent conditional request on the key) is sent.
const CONFLICT_TRIES: u32 = 5;

impl S3Store {
    /// After a conditional write answered 412: its ETag when the object holds
    /// `body`. A retried request whose first attempt landed (its answer lost)
    /// finds its own write there; anything else is another writer's.
    fn landed(&self, key: &str, body: &[u8]) -> Result<Option<String>, StoreError> {
        Ok(match self.get(key)? {
            Some((found, tag)) if found == body => Some(tag),
            _ => None,
        })
    }

    fn conflicted(&self, what: &str, key: &str) -> StoreError {
        StoreError {
            what: format!("{what} s3://{}/{}", self.bucket, self.key(key)),
            message: format!(
                "409 ConditionalRequestConflict {CONFLICT_TRIES} times: another request on the key keeps racing this one"
            ),
        }
    }
}
