//! The serving gateway: `POST /v2/models/{handle}/infer` on `kiln server`, routed to the
//! inference instances of the versions a handle's deployment serves.
//!
//! A deployment change (deploy, promote, rollback) starts the instances the new state needs
//! and waits until they answer ready, saves the state (a save that fails — the store gone,
//! another change first — stops what it started and switches nothing), swaps the routing table in one step,
//! and only then drains and stops the instances no longer needed: a request is always routed
//! to an instance that is ready and is never cut off. An instance that dies is replaced, and
//! a request that found it dead is retried on another. Admission is bounded ([`Limits`]):
//! past `in_flight` requests per handle, up to `waiting` wait (at most [`MAX_WAIT`], then
//! 503), the rest get 429 at once.

pub mod answered;
pub mod instances;
pub mod progress;
pub mod refusal;
pub mod request_id;
pub mod strategy;
pub mod traffic;
pub mod transitions;
pub mod upstream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode};
use kiln_api::{ApiError, Deploy, Deployment, DeploymentStatus, ErrorCode, InstanceStatus, Role, Traffic};
use tokio::sync::Semaphore;

use crate::store::{Store, now_millis};
use instances::{Instance, InstanceError, Launcher};
use refusal::Refusal;
use strategy::Arm;

/// How much the gateway admits per handle: requests at its instances at once, and requests
/// waiting for a slot (more are refused with 429).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub in_flight: usize,
    pub waiting: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { in_flight: 256, waiting: 512 }
    }
}
/// How long a request may wait for a slot before it is refused with 503.
pub const MAX_WAIT: Duration = Duration::from_secs(5);
/// How long an instance may take to answer one inference request.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);
/// How long a stopped instance's requests may take to finish.
const DRAIN: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Instance(#[from] InstanceError),
}

/// What the gateway routes one handle by: a snapshot, replaced whole on every change.
struct Route {
    /// The handle, shared with what remembers answers.
    name: Arc<str>,
    deployment: Deployment,
    instances: HashMap<i64, Vec<Arc<Instance>>>,
    /// Bandit arms' rewards (shared by the snapshots of one handle).
    arms: Arc<Mutex<Vec<Arm>>>,
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
}

impl Route {
    fn ready(&self, version: i64) -> Vec<Arc<Instance>> {
        self.instances.get(&version).map(|list| list.iter().filter(|i| i.is_ready()).cloned().collect()).unwrap_or_default()
    }
}

/// A gateway answer: status, body, and the version that answered. The body is JSON, or JSON
/// of `header_length` bytes then binary tensors (Triton's binary tensor data extension).
pub struct Answer {
    pub status: StatusCode,
    pub body: bytes::Bytes,
    pub version: Option<i64>,
    pub header_length: Option<HeaderValue>,
}

impl From<Refusal> for Answer {
    fn from(refusal: Refusal) -> Answer {
        Answer { status: refusal.status(), body: serde_json::to_vec(&refusal.body()).unwrap_or_default().into(), version: None, header_length: None }
    }
}

pub struct Gateway {
    store: Store,
    launcher: Launcher,
    routes: RwLock<HashMap<String, Arc<Route>>>,
    /// Deployment changes, one at a time.
    changes: tokio::sync::Mutex<()>,
    pub counter: traffic::Counter,
    /// Which version answered which request, for feedback.
    answered: answered::Answered,
    next: AtomicUsize,
    limits: Limits,
    /// Each handle's latest change, step by step.
    progress: progress::Changes,
}

/// Who asks for a change, and from which revision they decided it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asker<'a> {
    pub expected_revision: Option<i64>,
    pub actor: Option<&'a str>,
}

/// A change's instances started and its route built, not yet switched to.
struct Prepared {
    route: Arc<Route>,
    current: Option<Arc<Route>>,
    started: Vec<Arc<Instance>>,
}

impl Gateway {
    pub fn new(store: Store, launcher: Launcher, limits: Limits) -> Gateway {
        Gateway {
            store,
            launcher,
            routes: RwLock::new(HashMap::new()),
            changes: tokio::sync::Mutex::new(()),
            counter: traffic::Counter::default(),
            answered: answered::Answered::default(),
            next: AtomicUsize::new(0),
            limits,
            progress: progress::Changes::default(),
        }
    }

    fn route(&self, handle: &str) -> Option<Arc<Route>> {
        self.routes.read().expect("routes lock").get(handle).cloned()
    }

    /// Starts what `next` needs, swaps the route, drains what it no longer needs.
    async fn apply(&self, next: Deployment) -> Result<(), ServingError> {
        let prepared = self.prepare(next, None).await?;
        self.commit(prepared, None).await;
        Ok(())
    }

    /// Starts an instance of every version `next` serves that has none ready, and builds its
    /// route. On a failure the instances it started are stopped: nothing changed.
    async fn prepare(&self, next: Deployment, tracker: Option<&progress::Tracker<'_>>) -> Result<Prepared, ServingError> {
        let step = |kind: &str, version: i64, text: String| {
            if let Some(tracker) = tracker {
                tracker.step(kind, Some(version), text);
            }
        };
        let current = self.route(&next.handle);
        let mut instances: HashMap<i64, Vec<Arc<Instance>>> = HashMap::new();
        let mut started: Vec<Arc<Instance>> = Vec::new();
        for version in next.versions() {
            let running = current.as_ref().and_then(|r| r.instances.get(&version)).filter(|list| list.iter().any(|i| i.is_ready()));
            match running {
                Some(list) => {
                    step("ready", version, format!("version {version} is already running ({} ready)", list.iter().filter(|i| i.is_ready()).count()));
                    instances.insert(version, list.clone());
                }
                None => {
                    let begun = crate::store::now_millis();
                    let runner = next.runner.as_deref().unwrap_or("the server's runner");
                    step("starting", version, format!("starting an instance of version {version} ({runner}); waiting for its health check"));
                    match self.launcher.start(&next.handle, version, next.runner.as_deref()).await {
                        Ok(instance) => {
                            step("ready", version, format!("version {version} ready: /v2/health/ready answered after {}", progress::seconds_since(begun)));
                            started.push(instance.clone());
                            instances.insert(version, vec![instance]);
                        }
                        Err(error) => {
                            for instance in started {
                                instance.stop(Duration::ZERO).await;
                            }
                            return Err(error.into());
                        }
                    }
                }
            }
        }
        let arms = match &current {
            Some(route) => route.arms.clone(),
            None => Arc::new(Mutex::new(self.arm_history(&next.handle).await)),
        };
        let (slots, waiting) = match &current {
            Some(route) => (route.slots.clone(), route.waiting.clone()),
            None => (Arc::new(Semaphore::new(self.limits.in_flight)), Arc::new(AtomicUsize::new(0))),
        };
        let route = Arc::new(Route { name: next.handle.as_str().into(), deployment: next, instances, arms, slots, waiting });
        Ok(Prepared { route, current, started })
    }

    /// Switches to a prepared route in one step, then drains and stops the instances it no
    /// longer needs.
    async fn commit(&self, prepared: Prepared, tracker: Option<&progress::Tracker<'_>>) {
        let Prepared { route, current, .. } = prepared;
        let next = route.deployment.clone();
        {
            let mut arms = route.arms.lock().expect("arms lock");
            arms.retain(|a| next.arms.contains(&a.version));
            for version in &next.arms {
                if !arms.iter().any(|a| a.version == *version) {
                    arms.push(Arm { version: *version, ..Default::default() });
                }
            }
        }
        self.routes.write().expect("routes lock").insert(next.handle.clone(), route);
        if let Some(tracker) = tracker {
            tracker.step("switched", None, format!("switched: {}", describe_split(&next)));
        }
        // Only now, with no request routed to them any more, the old instances go.
        if let Some(old) = current {
            let keep = next.versions();
            for (version, list) in &old.instances {
                if !keep.contains(version) {
                    if let Some(tracker) = tracker {
                        tracker.step("draining", Some(*version), format!("version {version} drains its requests and stops"));
                    }
                    for instance in list {
                        instance.stop(DRAIN).await;
                    }
                }
            }
        }
    }

    /// Stops what `prepare` started, for a change that will not be switched to.
    async fn abandon(prepared: Prepared) {
        for instance in prepared.started {
            instance.stop(Duration::ZERO).await;
        }
    }

    /// Servers sharing a store each route with their own instances: a deployment changed
    /// through another server is applied here, and bandit arms take the rewards every server
    /// has stored (this one's included, flushed just before), within a tick.
    /// At start it brings up every stored deployment (no route exists yet).
    pub async fn sync(&self) {
        let _guard = self.changes.lock().await;
        let stored = match self.store.deployments().await {
            Ok(list) => list,
            Err(error) => return tracing::warn!(%error, "reading deployments"),
        };
        for deployment in stored {
            let current = self.route(&deployment.handle);
            let same = current.as_ref().is_some_and(|route| same_routing(&route.deployment, &deployment));
            if !same {
                tracing::info!(handle = %deployment.handle, strategy = %deployment.strategy, "a deployment changed in the store; applying it");
                if let Err(error) = self.apply(deployment.clone()).await {
                    tracing::warn!(handle = %deployment.handle, %error, "applying a deployment changed elsewhere");
                }
                continue;
            }
            if let Some(route) = current
                && deployment.strategy.is_bandit()
            {
                let stored = self.arm_history(&deployment.handle).await;
                for arm in route.arms.lock().expect("arms lock").iter_mut() {
                    let earned = stored.iter().find(|a| a.version == arm.version).copied().unwrap_or_default();
                    (arm.reward_sum, arm.rewards) = (earned.reward_sum, earned.rewards);
                }
            }
        }
    }

    /// The arms' rewards so far, from the traffic the store has counted.
    async fn arm_history(&self, handle: &str) -> Vec<Arm> {
        match self.store.rewards(handle).await {
            Ok(rewards) => rewards.into_iter().map(|(version, reward_sum, rewards)| Arm { version, reward_sum, rewards }).collect(),
            Err(error) => {
                tracing::warn!(%handle, %error, "reading the arms' rewards");
                Vec::new()
            }
        }
    }

    async fn current(&self, handle: &str) -> Result<Option<Deployment>, ServingError> {
        match self.store.deployment(handle).await {
            Ok(d) => Ok(Some(d)),
            Err(crate::store::StoreError::Api(e)) if e.error_code == ErrorCode::ResourceDoesNotExist => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// One change of `handle`, one at a time: `decide` makes the next deployment from the
    /// current one; its instances start and pass their health checks; it is saved if nobody
    /// changed the deployment since the asker looked (`expected_revision`); only then is
    /// traffic switched. Any failure before the save leaves everything as it was.
    async fn change(
        &self,
        handle: &str,
        asker: Asker<'_>,
        action: &str,
        decide: impl FnOnce(Option<Deployment>) -> transitions::Transition,
    ) -> Result<Deployment, ServingError> {
        let current = self.current(handle).await?;
        let revision = current.as_ref().map_or(0, |d| d.revision);
        if let Some(expected) = asker.expected_revision
            && expected != revision
        {
            return Err(crate::store::conflict(handle, expected, revision, current.as_ref()).into());
        }
        let (next, detail) = decide(current)?;
        let tracker = self.progress.begin(handle, action, &detail);
        let prepared = match self.prepare(next.clone(), Some(&tracker)).await {
            Ok(prepared) => prepared,
            Err(error) => {
                tracker.failed(&error.to_string());
                return Err(error);
            }
        };
        let change = crate::store::Change { action, detail: &detail, actor: asker.actor };
        match self.store.save_deployment(&next, &change, revision).await {
            Ok(saved) => {
                tracker.step("saved", None, format!("saved as revision {}", saved.revision));
                self.commit(prepared, Some(&tracker)).await;
                tracker.done();
                Ok(saved)
            }
            Err(error) => {
                Self::abandon(prepared).await;
                tracker.failed(&format!("saving the change: {error}"));
                Err(error.into())
            }
        }
    }

    /// `kiln deploy`: serve `request.model_version` of `handle` with `request.strategy`.
    pub async fn deploy(&self, handle: &str, request: &Deploy, actor: Option<&str>) -> Result<Deployment, ServingError> {
        let _guard = self.changes.lock().await;
        let version = request.model_version;
        self.store
            .model_version(handle, version)
            .await
            .map_err(|_| ApiError::invalid("model_version", format!("model `{handle}` has no version {version}")))?;
        // Instances run the handle's newest infer image: without one nothing can serve.
        let packages = self.store.code_packages(handle).await?;
        if !packages.iter().any(|p| p.role == Role::Infer) {
            return Err(ApiError::invalid(
                "model_version",
                format!("`{handle}` has no infer image to serve version {version} with: tag a cell `infer` and componentize the notebook"),
            )
            .into());
        }
        let asker = Asker { expected_revision: request.expected_revision, actor };
        self.change(handle, asker, "deploy", |current| transitions::deploy(handle, current.as_ref(), request, now_millis())).await
    }

    /// `kiln promote`: see [`transitions::promote`]; a bandit's winner is the arm with the best
    /// mean reward so far.
    pub async fn promote(&self, handle: &str, asker: Asker<'_>) -> Result<Deployment, ServingError> {
        let _guard = self.changes.lock().await;
        let best = self.route(handle).and_then(|r| {
            let arms = r.arms.lock().expect("arms lock");
            arms.iter()
                .filter(|a| a.rewards > 0)
                .max_by(|a, b| (a.reward_sum / a.rewards as f64).total_cmp(&(b.reward_sum / b.rewards as f64)))
                .map(|a| a.version)
        });
        self.change(handle, asker, "promote", |current| match current {
            Some(current) => transitions::promote(current, best),
            None => Err(ApiError::not_found("deployment", handle)),
        })
        .await
    }

    /// `kiln rollback`: see [`transitions::rollback`].
    pub async fn rollback(&self, handle: &str, asker: Asker<'_>) -> Result<Deployment, ServingError> {
        let _guard = self.changes.lock().await;
        self.change(handle, asker, "rollback", |current| match current {
            Some(current) => transitions::rollback(current),
            None => Err(ApiError::not_found("deployment", handle)),
        })
        .await
    }

    /// The instances this server runs for `handle`, and how its latest change went.
    pub fn status(&self, handle: &str) -> DeploymentStatus {
        let instances = self
            .route(handle)
            .map(|route| {
                let mut list: Vec<InstanceStatus> = route
                    .instances
                    .iter()
                    .flat_map(|(version, list)| {
                        list.iter().map(move |i| InstanceStatus {
                            version: *version,
                            state: i.state().to_owned(),
                            started_at: i.started_at,
                            in_flight: i.in_flight() as u64,
                        })
                    })
                    .collect();
                list.sort_by_key(|i| (i.version, i.started_at));
                list
            })
            .unwrap_or_default();
        DeploymentStatus { handle: handle.to_owned(), instances, change: self.progress.latest(handle) }
    }

    /// The traffic of `handle` since `since`, in buckets `width` wide (the store keeps
    /// minutes, and 10 s for the last hour), with what is counted but not yet stored.
    pub async fn traffic(&self, handle: &str, since: i64, width: i64) -> Result<Traffic, ServingError> {
        self.flush().await;
        let buckets = self.store.traffic(handle, since, width, traffic::percentile).await?;
        Ok(Traffic { handle: handle.to_owned(), bucket_ms: width, buckets })
    }

    /// Adds the counts so far to the store.
    pub async fn flush(&self) {
        for (handle, deltas) in self.counter.take() {
            if let Err(error) = self.store.add_traffic(&handle, &deltas).await {
                tracing::warn!(%handle, %error, "storing traffic counts; keeping them for the next try");
                self.counter.put_back(&handle, deltas);
            }
        }
    }

    /// Replaces dead instances and flushes the counters, every second, until `stop`.
    pub fn watch(self: &Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let gateway = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
                gateway.flush().await;
                gateway.replace_dead().await;
                gateway.sync().await;
            }
            gateway.flush().await;
        })
    }

    async fn replace_dead(&self) {
        let routes: Vec<Arc<Route>> = self.routes.read().expect("routes lock").values().cloned().collect();
        for route in routes {
            for list in route.instances.values() {
                for instance in list {
                    // Gone, or failing requests while it runs: either way, replace it.
                    if instance.exited().await || instance.failing() {
                        instance.stop(Duration::ZERO).await;
                        let _guard = self.changes.lock().await;
                        tracing::warn!(handle = %instance.handle, version = instance.version, "an instance died; starting another");
                        // `apply` starts an instance for every version with none ready.
                        if let Some(current) = self.route(&route.deployment.handle)
                            && let Err(error) = self.apply(current.deployment.clone()).await
                        {
                            tracing::warn!(handle = %instance.handle, %error, "replacing a dead instance");
                        }
                    }
                }
            }
        }
    }

    /// Stops every instance, letting requests in flight finish.
    pub async fn shutdown(&self) {
        let routes: Vec<Arc<Route>> = self.routes.write().expect("routes lock").drain().map(|(_, r)| r).collect();
        for route in routes {
            for list in route.instances.values() {
                for instance in list {
                    instance.stop(DRAIN).await;
                }
            }
        }
        self.flush().await;
    }

    /// One inference request, from admission to answer; `header_length` is its
    /// `Inference-Header-Content-Length` when binary tensors follow the JSON.
    pub async fn infer(&self, handle: &str, pinned: Option<i64>, body: bytes::Bytes, header_length: Option<HeaderValue>) -> Answer {
        let Some(route) = self.route(handle) else {
            return Refusal::NotDeployed { handle: handle.to_owned() }.into();
        };
        // The body goes to the instance as it came (with an id put in when it had none): the
        // instance checks it with kiln-api's OIP checks and answers 400 naming the field, so
        // the gateway does not parse a request twice.
        let (body, header_length, id) = match request_id::ensure_split(body, header_length, || self.answered.new_id()) {
            Ok(prepared) => prepared,
            Err(error) => return Refusal::Malformed(error).into(),
        };
        // Admission: a bounded number in flight, a bounded number waiting.
        let _slot = match route.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                let Limits { in_flight, waiting } = self.limits;
                if route.waiting.fetch_add(1, Ordering::SeqCst) >= waiting {
                    route.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Refusal::Overloaded { handle: handle.to_owned(), in_flight, waiting }.into();
                }
                let waited = tokio::time::timeout(MAX_WAIT, route.slots.clone().acquire_owned()).await;
                route.waiting.fetch_sub(1, Ordering::SeqCst);
                match waited {
                    Ok(Ok(slot)) => slot,
                    _ => {
                        return Refusal::NoSlot { handle: handle.to_owned(), seconds: MAX_WAIT.as_secs() }.into();
                    }
                }
            }
        };
        let version = match pinned {
            Some(v) if route.instances.contains_key(&v) => v,
            Some(v) => {
                return Refusal::VersionNotDeployed { handle: handle.to_owned(), version: v, deployed: route.deployment.versions() }.into();
            }
            None => strategy::pick(&route.deployment, &route.arms.lock().expect("arms lock"), &mut rand::rng()),
        };
        let started = Instant::now();
        for _attempt in 0..3 {
            let Some(instance) = self.instance_for(&route, version, pinned.is_some()).await else {
                self.counter.request(handle, version, started.elapsed(), true);
                return Refusal::NotReady { handle: handle.to_owned() }.into();
            };
            let _in_flight = instance.enter();
            match instance.upstream.infer(body.clone(), header_length.clone(), ANSWER_WITHIN).await {
                Ok(upstream::Reply { status, body: answer, header_length }) => {
                    self.counter.request(handle, instance.version, started.elapsed(), status.is_server_error());
                    if status.is_success()
                        && let Some(id) = &id
                    {
                        self.answered.remember(id, &route.name, instance.version);
                    }
                    return Answer { status, body: answer, version: Some(instance.version), header_length };
                }
                Err(error) => {
                    // Refused, cut off or silent: the instance is gone or going. Retry on another.
                    tracing::warn!(%error, url = %instance.url, "an instance did not answer; retrying elsewhere");
                    instance.mark_unready();
                }
            }
        }
        self.counter.request(handle, version, started.elapsed(), true);
        Refusal::NoAnswer { handle: handle.to_owned() }.into()
    }

    /// A ready instance for `version`: its own, else (unless pinned) the stable version's, else
    /// any deployed version's. With none ready (one died and is being replaced), waits for
    /// the replacement up to [`MAX_WAIT`].
    async fn instance_for(&self, route: &Route, version: i64, pinned: bool) -> Option<Arc<Instance>> {
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        loop {
            // The newest snapshot: a replacement shows up there.
            let current = self.route(&route.deployment.handle);
            let route = current.as_deref().unwrap_or(route);
            let mut candidates = route.ready(version);
            if candidates.is_empty() && !pinned {
                candidates = route.ready(route.deployment.stable);
                if candidates.is_empty() {
                    candidates = route.deployment.versions().iter().flat_map(|v| route.ready(*v)).collect();
                }
            }
            if !candidates.is_empty() {
                return Some(candidates[self.next.fetch_add(1, Ordering::Relaxed) % candidates.len()].clone());
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Reward for the answer to request `id` (or for `version` directly, Seldon's shape).
    pub fn feedback(&self, handle: &str, id: Option<&str>, version: Option<i64>, reward: f64) -> Result<i64, Refusal> {
        if !(0.0..=1.0).contains(&reward) || !reward.is_finite() {
            return Err(Refusal::invalid("reward", format!("{reward} is not in [0, 1]")));
        }
        let version = match (id, version) {
            (Some(id), _) => match self.answered.version(handle, id) {
                Some(v) => v,
                None => return Err(Refusal::UnknownAnswer { handle: handle.to_owned(), id: id.to_owned() }),
            },
            (None, Some(v)) => v,
            (None, None) => {
                return Err(Refusal::invalid("id", "name the request (`id`) or the version that answered (`response.model_version`)"));
            }
        };
        if let Some(route) = self.route(handle) {
            let mut arms = route.arms.lock().expect("arms lock");
            if let Some(arm) = arms.iter_mut().find(|a| a.version == version) {
                arm.reward_sum += reward;
                arm.rewards += 1;
            }
        }
        self.counter.reward(handle, version, reward);
        Ok(version)
    }

    /// The handle's model metadata, from a ready instance of its stable version, listing every
    /// deployed version.
    pub async fn metadata(&self, handle: &str) -> Answer {
        let Some(route) = self.route(handle) else {
            return Refusal::NotDeployed { handle: handle.to_owned() }.into();
        };
        let Some(instance) = route.ready(route.deployment.stable).into_iter().next() else {
            return Refusal::NotReady { handle: handle.to_owned() }.into();
        };
        match instance.upstream.get(&format!("/v2/models/{handle}"), Duration::from_secs(10)).await {
            Ok((_, bytes)) => {
                let mut metadata: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                metadata["versions"] = serde_json::json!(route.deployment.versions().iter().map(|v| v.to_string()).collect::<Vec<_>>());
                Answer {
                    status: StatusCode::OK,
                    body: serde_json::to_vec(&metadata).unwrap_or_default().into(),
                    version: Some(route.deployment.stable),
                    header_length: None,
                }
            }
            Err(error) => Refusal::Upstream { handle: handle.to_owned(), why: error.to_string() }.into(),
        }
    }

    /// Whether `handle` (at `version`, when given) has a ready instance.
    pub fn ready(&self, handle: &str, version: Option<i64>) -> Option<bool> {
        let route = self.route(handle)?;
        Some(match version {
            Some(v) => !route.ready(v).is_empty(),
            None => route.deployment.versions().iter().any(|v| !route.ready(*v).is_empty()),
        })
    }
}

/// Whether two states of a deployment route alike (its history and times aside).
fn same_routing(a: &Deployment, b: &Deployment) -> bool {
    (a.strategy, a.stable, a.candidate, a.standby, &a.arms, &a.runner) == (b.strategy, b.stable, b.candidate, b.standby, &b.arms, &b.runner)
}

/// Where a deployment sends traffic, in words, for the steps of a change.
fn describe_split(d: &Deployment) -> String {
    let handle = &d.handle;
    match (d.strategy, d.candidate) {
        (kiln_api::Strategy::Canary { percent }, Some(candidate)) => {
            format!("version {candidate} takes {percent} % of {handle}; version {} keeps {} %", d.stable, 100 - u32::from(percent))
        }
        (strategy, _) if strategy.is_bandit() && d.arms.len() > 1 => {
            let arms: Vec<String> = d.arms.iter().map(|v| v.to_string()).collect();
            format!("{strategy} shares {handle} between versions {}", arms.join(", "))
        }
        _ => match d.standby {
            Some(standby) => format!("version {} takes all of {handle}; version {standby} stays on standby", d.stable),
            None => format!("version {} takes all of {handle}", d.stable),
        },
    }
}
