//! [`Routed`]: one [`Cloud`] over the clouds of several accounts, sending each call
//! to the account of the resource it concerns, as the plan's
//! [`Routes`](crate::state::Routes) say. The engine stays unaware of accounts.

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures::future::try_join_all;

use super::cloud::{Cloud, CloudError, Members};
use crate::accounts::Accounts;
use crate::journal::RecordSetDef;
use crate::state::{Capacity, GroupState, Routes};

/// The clouds of a run's accounts, and which resource is in which.
pub struct Routed<C> {
    clouds: Accounts<C>,
    routes: Routes,
    /// Accounts of what calls return rather than what the plan names: Route 53
    /// change ids and instance ids.
    learned: Mutex<Learned>,
}

#[derive(Default)]
struct Learned {
    changes: BTreeMap<String, String>,
    instances: BTreeMap<String, String>,
}

impl<C: Cloud> Routed<C> {
    /// Routes calls to `clouds` as `routes` say.
    pub fn new(clouds: Accounts<C>, routes: Routes) -> Self {
        Self {
            clouds,
            routes,
            learned: Mutex::new(Learned::default()),
        }
    }

    fn cloud(
        &self,
        account: Option<&str>,
        what: impl FnOnce() -> String,
    ) -> Result<&C, CloudError> {
        self.clouds.get(account).ok_or_else(|| CloudError::new(
            what(),
            format!(
                "the plan puts it in account `{}`, and no credentials were set up for that account",
                account.unwrap_or_default()
            ),
        ))
    }

    fn learned(&self) -> std::sync::MutexGuard<'_, Learned> {
        self.learned
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `names` split by the account each group is in.
    fn by_account(&self, region: &str, names: &[String]) -> BTreeMap<Option<&str>, Vec<String>> {
        let mut split: BTreeMap<Option<&str>, Vec<String>> = BTreeMap::new();
        for name in names {
            split
                .entry(self.routes.group(region, name))
                .or_default()
                .push(name.clone());
        }
        split
    }
}

impl<C: Cloud> Cloud for Routed<C> {
    async fn groups(
        &self,
        region: &str,
        names: &[String],
    ) -> Result<BTreeMap<String, GroupState>, CloudError> {
        let parts = try_join_all(self.by_account(region, names).into_iter().map(
            |(account, names)| async move {
                let cloud = self.cloud(account, || {
                    format!("describe Auto Scaling groups in {region}")
                })?;
                cloud.groups(region, &names).await
            },
        ))
        .await?;
        Ok(parts.into_iter().flatten().collect())
    }

    async fn activities(
        &self,
        region: &str,
        group: &str,
    ) -> Result<Vec<super::cloud::Activity>, CloudError> {
        self.cloud(self.routes.group(region, group), || {
            format!("read the scaling activities of {group} in {region}")
        })?
        .activities(region, group)
        .await
    }

    async fn set_capacity(
        &self,
        region: &str,
        group: &str,
        capacity: Capacity,
    ) -> Result<(), CloudError> {
        self.cloud(self.routes.group(region, group), || {
            format!("set the capacity of {group} in {region}")
        })?
        .set_capacity(region, group, capacity)
        .await
    }

    async fn record_sets(
        &self,
        zone_id: &str,
        name: &str,
        record_type: &str,
    ) -> Result<Vec<RecordSetDef>, CloudError> {
        self.cloud(self.routes.zone(zone_id), || {
            format!("list the record sets of hosted zone {zone_id}")
        })?
        .record_sets(zone_id, name, record_type)
        .await
    }

    async fn zone_record_sets(
        &self,
        zone_id: &str,
        wanted: &[(String, String)],
    ) -> Result<Vec<RecordSetDef>, CloudError> {
        self.cloud(self.routes.zone(zone_id), || {
            format!("list the record sets of hosted zone {zone_id}")
        })?
        .zone_record_sets(zone_id, wanted)
        .await
    }

    async fn change_weights(
        &self,
        zone_id: &str,
        changes: &[super::cloud::WeightChange],
    ) -> Result<String, CloudError> {
        let account = self.routes.zone(zone_id);
        let change = self
            .cloud(account, || {
                format!("change the weights in hosted zone {zone_id}")
            })?
            .change_weights(zone_id, changes)
            .await?;
        if let Some(account) = account {
            self.learned()
                .changes
                .insert(change.clone(), account.to_owned());
        }
        Ok(change)
    }

    async fn change_in_sync(&self, change_id: &str) -> Result<bool, CloudError> {
        let account = self.learned().changes.get(change_id).cloned();
        self.cloud(account.as_deref(), || {
            format!("get Route 53 change {change_id}")
        })?
        .change_in_sync(change_id)
        .await
    }

    async fn alarm_state(&self, region: &str, name: &str) -> Result<Option<String>, CloudError> {
        self.cloud(self.routes.alarm(region, name), || {
            format!("describe alarm {name} in {region}")
        })?
        .alarm_state(region, name)
        .await
    }

    async fn metric(&self, query: &crate::plan::MetricQuery) -> Result<Option<f64>, CloudError> {
        self.cloud(query.account.as_deref(), || format!("read metric {query}"))?
            .metric(query)
            .await
    }

    async fn health_check_healthy(&self, id: &str) -> Result<bool, CloudError> {
        self.cloud(self.routes.health_check(id), || {
            format!("get the status of health check {id}")
        })?
        .health_check_healthy(id)
        .await
    }

    async fn instances(
        &self,
        region: &str,
        groups: &[String],
    ) -> Result<BTreeMap<String, Members>, CloudError> {
        let parts = try_join_all(self.by_account(region, groups).into_iter().map(
            |(account, names)| async move {
                let cloud = self.cloud(account, || {
                    format!("describe the instances of Auto Scaling groups in {region}")
                })?;
                let found = cloud.instances(region, &names).await?;
                if let Some(account) = account {
                    let mut learned = self.learned();
                    for members in found.values() {
                        for instance in &members.instances {
                            learned
                                .instances
                                .insert(instance.id.clone(), account.to_owned());
                        }
                    }
                }
                Ok::<_, CloudError>(found)
            },
        ))
        .await?;
        Ok(parts.into_iter().flatten().collect())
    }

    async fn set_subnets(
        &self,
        region: &str,
        group: &str,
        subnets: &[String],
    ) -> Result<(), CloudError> {
        self.cloud(self.routes.group(region, group), || {
            format!("set the subnets of {group} in {region}")
        })?
        .set_subnets(region, group, subnets)
        .await
    }

    async fn suspend_processes(
        &self,
        region: &str,
        group: &str,
        processes: &[String],
    ) -> Result<(), CloudError> {
        self.cloud(self.routes.group(region, group), || {
            format!("suspend processes of {group} in {region}")
        })?
        .suspend_processes(region, group, processes)
        .await
    }

    async fn resume_processes(
        &self,
        region: &str,
        group: &str,
        processes: &[String],
    ) -> Result<(), CloudError> {
        self.cloud(self.routes.group(region, group), || {
            format!("resume processes of {group} in {region}")
        })?
        .resume_processes(region, group, processes)
        .await
    }

    async fn replace_instance(&self, region: &str, instance: &str) -> Result<(), CloudError> {
        let account = self.learned().instances.get(instance).cloned();
        self.cloud(account.as_deref(), || {
            format!("replace instance {instance} in {region}")
        })?
        .replace_instance(region, instance)
        .await
    }

    async fn remove_instance(&self, region: &str, instance: &str) -> Result<(), CloudError> {
        let account = self.learned().instances.get(instance).cloned();
        self.cloud(account.as_deref(), || {
            format!("remove instance {instance} in {region}")
        })?
        .remove_instance(region, instance)
        .await
    }

    async fn set_protection(
        &self,
        region: &str,
        group: &str,
        instances: &[String],
        protected: bool,
    ) -> Result<(), CloudError> {
        self.cloud(self.routes.group(region, group), || {
            format!("set the scale-in protection of instances of {group} in {region}")
        })?
        .set_protection(region, group, instances, protected)
        .await
    }

    async fn balanced(
        &self,
        region: &str,
        groups: &[&GroupState],
    ) -> Result<BTreeMap<String, Vec<crate::state::BalancerView>>, CloudError> {
        let mut split: BTreeMap<Option<&str>, Vec<&GroupState>> = BTreeMap::new();
        for group in groups {
            split
                .entry(self.routes.group(region, &group.name))
                .or_default()
                .push(group);
        }
        let parts = try_join_all(split.into_iter().map(|(account, states)| async move {
            let cloud = self.cloud(account, || {
                format!("read the load balancers of Auto Scaling groups in {region}")
            })?;
            cloud.balanced(region, &states).await
        }))
        .await?;
        Ok(parts.into_iter().flatten().collect())
    }

    async fn zonal_shifts(
        &self,
        region: &str,
        resource: &str,
    ) -> Result<Vec<super::cloud::ActiveShift>, CloudError> {
        self.cloud(self.routes.shift(resource), || {
            format!("read the zonal shifts of {resource}")
        })?
        .zonal_shifts(region, resource)
        .await
    }

    async fn start_shift(
        &self,
        region: &str,
        resource: &str,
        away_from: &str,
        comment: &str,
        minutes: u32,
    ) -> Result<String, CloudError> {
        self.cloud(self.routes.shift(resource), || {
            format!("start a zonal shift of {resource}")
        })?
        .start_shift(region, resource, away_from, comment, minutes)
        .await
    }

    async fn extend_shift(
        &self,
        region: &str,
        resource: &str,
        id: &str,
        minutes: u32,
    ) -> Result<(), CloudError> {
        self.cloud(self.routes.shift(resource), || {
            format!("extend zonal shift {id}")
        })?
        .extend_shift(region, resource, id, minutes)
        .await
    }

    async fn cancel_shift(&self, region: &str, resource: &str, id: &str) -> Result<(), CloudError> {
        self.cloud(self.routes.shift(resource), || {
            format!("cancel zonal shift {id}")
        })?
        .cancel_shift(region, resource, id)
        .await
    }
}
