//! How fast evac may call each AWS service: AWS's documented or assumed request
//! rates, the rates `--rate` sets, and the burst a token bucket allows. The plan's
//! estimates and the clients' pacing ([`crate::aws::pace`]) both read them.

use std::collections::BTreeMap;

/// Requests per second per account for Route 53, as AWS documents it.
pub const ROUTE53_RATE: f64 = 5.0;
/// Requests per second per account and region assumed for Auto Scaling, EC2 and
/// CloudWatch: AWS publishes no figure; throttling is reported above a few tens of
/// requests a second sustained. Change it with `--rate`.
pub const REGIONAL_RATE: f64 = 20.0;

/// A service whose rate can be set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    /// Route 53.
    Route53,
    /// Auto Scaling.
    AutoScaling,
    /// EC2.
    Ec2,
    /// CloudWatch.
    CloudWatch,
    /// Elastic Load Balancing.
    Elb,
}

impl std::str::FromStr for Service {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "route53" => Ok(Service::Route53),
            "autoscaling" => Ok(Service::AutoScaling),
            "ec2" => Ok(Service::Ec2),
            "cloudwatch" => Ok(Service::CloudWatch),
            "elasticloadbalancing" => Ok(Service::Elb),
            other => Err(format!(
                "unknown service `{other}`: use route53, autoscaling, ec2, cloudwatch or elasticloadbalancing"
            )),
        }
    }
}

/// Requests per second per service; anything not set has its default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rates(pub BTreeMap<Service, f64>);

impl Rates {
    /// The rate of `service` in requests per second.
    pub fn of(&self, service: Service) -> f64 {
        self.0.get(&service).copied().unwrap_or(match service {
            Service::Route53 => ROUTE53_RATE,
            _ => REGIONAL_RATE,
        })
    }

    /// Parses `SERVICE=N` (requests per second, at least [`MIN_RATE`] and at most
    /// 1000).
    pub fn parse_one(text: &str) -> Result<(Service, f64), String> {
        let (service, rate) = text
            .split_once('=')
            .ok_or_else(|| format!("invalid rate `{text}`: write SERVICE=REQUESTS_PER_SECOND"))?;
        let rate: f64 = rate
            .parse()
            .map_err(|_| format!("invalid rate `{text}`: `{rate}` is not a number"))?;
        if !(rate > 0.0 && rate <= 1000.0) {
            return Err(format!(
                "invalid rate `{text}`: give more than 0 and at most 1000 requests per second"
            ));
        }
        if rate < MIN_RATE {
            return Err(format!(
                "invalid rate `{text}`: {rate} requests per second is below the floor of {MIN_RATE} (one call every {}s would make a plan or a run wait longer than any call may take); give at least {MIN_RATE}",
                1.0 / MIN_RATE
            ));
        }
        Ok((service.parse()?, rate))
    }
}

/// The slowest pace a service may be given: one call every 10 seconds. Slower, a
/// single plan could wait for minutes between reads.
pub const MIN_RATE: f64 = 0.1;

/// How many calls may leave at once at `rate` per second: AWS's bucket holds about
/// one second of requests, and a fifth of a second of them (at least one) is kept
/// spare, so that calls bunched up by the network on their way never find it empty.
pub fn burst(rate: f64) -> f64 {
    (rate.floor() - (rate * 0.2).ceil().max(1.0)).max(1.0)
}
