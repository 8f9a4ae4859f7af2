//! `evac iam-policy`: the IAM policy document a playbook needs, for a security
//! review or for the role that runs drills.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::{VarArgs, load_or_report};
use crate::exit::Exit;
use crate::plan::iam::{PolicyFor, Purpose, policy};
use crate::plan::observe::{HostedZone, Needs, Observe, is_zone_id};
use crate::state::ZoneLookup;

/// What `evac iam-policy` takes.
#[derive(Debug, clap::Args)]
pub struct IamPolicyArgs {
    /// The playbook.
    #[arg(value_name = "PLAYBOOK")]
    pub playbook: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    /// The commands the policy is for: plan (reads), run (run, resume and
    /// rollback, which read too), or state (the --state-role's access to the
    /// state dir).
    #[arg(long = "for", value_enum, default_value_t = Purpose::Run)]
    pub purpose: Purpose,
    /// The policy of this named account of the playbook (`accounts:`); without it,
    /// the policy of the ambient credentials, which also assume the accounts' roles.
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// The S3 state dir runs keep their journals and locks in: adds its bucket and
    /// prefix (to the ambient credentials' run policy).
    #[arg(long, value_name = "s3://BUCKET/PREFIX")]
    pub state_dir: Option<String>,
    /// The role the S3 state dir is reached through (as given to run): the run
    /// policy then assumes it, and `--for state` prints the role's own policy.
    #[arg(long, value_name = "ROLE_ARN", requires = "state_dir")]
    pub state_role: Option<String>,
    /// Do not look up hosted zones written by name: their ARNs become
    /// `hostedzone/*`. Otherwise they are looked up, read-only, to narrow the policy
    /// to their ids.
    #[arg(long)]
    pub offline: bool,
}

/// Prints the policy: exit 0; 2 for an invalid playbook or option; 1 when a hosted
/// zone lookup fails.
pub fn run(args: &IamPolicyArgs) -> Exit {
    let Some((playbook, _)) = load_or_report(&args.playbook, &args.vars) else {
        return Exit::InvalidInput;
    };
    if let Some(name) = &args.account
        && !playbook.accounts.contains_key(name)
    {
        crate::say_error!(
            "--account {name}: the playbook defines no such account ({})",
            if playbook.accounts.is_empty() {
                "it defines none".to_owned()
            } else {
                format!(
                    "it defines {}",
                    playbook
                        .accounts
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        return Exit::InvalidInput;
    }
    let state = match args
        .state_dir
        .as_deref()
        .map(crate::journal::parse_location)
    {
        None => None,
        Some(Ok(crate::journal::Location::S3 { bucket, prefix })) => Some((bucket, prefix)),
        Some(Err(why)) => {
            crate::say_error!("{why}");
            return Exit::InvalidInput;
        }
        Some(Ok(crate::journal::Location::Local(_))) => {
            crate::say_error!(
                "--state-dir {}: only an S3 state dir needs AWS permissions; write s3://BUCKET/PREFIX, or leave it out for a local one",
                args.state_dir.as_deref().unwrap_or_default()
            );
            return Exit::InvalidInput;
        }
    };
    if args.purpose == Purpose::State && state.is_none() {
        crate::say_error!("--for state: give the S3 state dir with --state-dir s3://BUCKET/PREFIX");
        return Exit::InvalidInput;
    }
    let account = args.account.as_deref();
    let names: BTreeSet<&str> = Needs::of(&playbook, account)
        .records
        .values()
        .map(|r| r.zone.as_str())
        .filter(|z| !is_zone_id(z))
        .collect();
    let mut zone_ids = BTreeMap::new();
    if !names.is_empty() && args.offline {
        crate::say_warning!(
            "hosted zone(s) {} written by name and not looked up (--offline): the policy allows their actions on every hosted zone; write zone ids in the playbook to narrow it",
            names.iter().copied().collect::<Vec<_>>().join(", ")
        );
    } else if !names.is_empty() {
        match lookup(&playbook, account, &names) {
            Ok(found) => {
                for (written, zone) in found {
                    match zone.lookup {
                        ZoneLookup::Found { id, .. } => {
                            zone_ids.insert(written, id);
                        }
                        _ => crate::say_warning!(
                            "hosted zone {written} was not found (or more than one has that name): the policy allows its actions on every hosted zone; write its id in the playbook"
                        ),
                    }
                }
            }
            Err(exit) => return exit,
        }
    }
    let document = policy(&PolicyFor {
        playbook: &playbook,
        purpose: args.purpose,
        account,
        zone_ids: &zone_ids,
        state: state.as_ref().map(|(b, p)| (b.as_str(), p.as_str())),
        state_role: args.state_role.as_deref(),
    });
    crate::shell::out_text(&(serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"));
    Exit::Success
}

/// Looks up hosted zones by name in the account, with its credentials.
fn lookup(
    playbook: &crate::playbook::Playbook,
    account: Option<&str>,
    names: &BTreeSet<&str>,
) -> Result<BTreeMap<String, HostedZone>, Exit> {
    let rt = super::session::runtime()?;
    rt.block_on(async {
        let ctx = super::session::aws(&crate::aws::pace::Rates::default()).await?;
        let clouds = super::session::clouds(ctx, &playbook.accounts, "iam-policy").await;
        let Some(cloud) = clouds.get(account) else {
            return Err(Exit::InvalidInput);
        };
        cloud.hosted_zones(names).await.map_err(|err| {
            crate::say_error!(
                "{err}\nthe hosted zones written by name are looked up to narrow the policy to their ids: give credentials that may read them, or pass --offline"
            );
            Exit::StepFailed
        })
    })
}
