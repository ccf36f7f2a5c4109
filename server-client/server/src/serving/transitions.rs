//! The deployment state machine: what a deploy, a promote or a rollback makes of a
//! deployment, with the line its history records. Pure (no instance, store or lock), so each
//! transition is tested here; [`super::Gateway`] checks the request against the store, applies
//! the result to its instances and saves it.

use kiln_api::{ApiError, Deploy, Deployment, Strategy};

/// The next deployment and what changed, in words.
pub type Transition = Result<(Deployment, String), ApiError>;

/// `kiln deploy`: `request.model_version` of `handle` under `request.strategy`, from what is
/// deployed now (`None`: nothing yet).
pub fn deploy(handle: &str, current: Option<&Deployment>, request: &Deploy, now: i64) -> Transition {
    if let Some(runner) = &request.runner
        && !matches!(runner.as_str(), "podman" | "process")
    {
        return Err(ApiError::invalid("runner", format!("'{runner}' is not a runner (podman or process)")));
    }
    let version = request.model_version;
    let mut next = current.cloned().unwrap_or(Deployment {
        handle: handle.to_owned(),
        strategy: request.strategy,
        stable: version,
        candidate: None,
        standby: None,
        arms: Vec::new(),
        runner: request.runner.clone(),
        updated_at: now,
        revision: 0,
        history: Vec::new(),
    });
    if request.runner.is_some() {
        next.runner = request.runner.clone();
    }
    let detail = match (current, request.strategy) {
        (None, strategy) => {
            if strategy.is_bandit() {
                next.arms = vec![version];
            }
            format!("{strategy}: version {version} serves all traffic")
        }
        (Some(_), Strategy::BlueGreen) => {
            if next.stable != version {
                next.standby = Some(next.stable);
            }
            next.stable = version;
            next.candidate = None;
            next.arms.clear();
            format!("blue-green: version {version} active{}", next.standby.map(|s| format!(", {s} on standby")).unwrap_or_default())
        }
        (Some(_), Strategy::Canary { percent }) => {
            if version == next.stable {
                return Err(ApiError::invalid("model_version", format!("version {version} is already the stable version of `{handle}`")));
            }
            next.candidate = Some(version);
            next.standby = None;
            next.arms.clear();
            format!("canary: {percent}% to version {version}, the rest to {}", next.stable)
        }
        (Some(_), strategy) => {
            if next.arms.is_empty() {
                next.arms.push(next.stable);
            }
            if !next.arms.contains(&version) {
                next.arms.push(version);
            }
            next.candidate = None;
            next.standby = None;
            format!("{strategy}: arms {:?}", next.arms)
        }
    };
    next.strategy = request.strategy;
    Ok((next, detail))
}

/// `kiln promote`: the canary candidate becomes stable; blue-green drops its standby; a
/// bandit keeps `best_arm` (the arm with the best mean reward; `None`: no feedback yet).
pub fn promote(mut next: Deployment, best_arm: Option<i64>) -> Transition {
    let detail = match next.strategy {
        _ if next.candidate.is_some() => {
            let candidate = next.candidate.take().expect("checked");
            let old = std::mem::replace(&mut next.stable, candidate);
            format!("version {candidate} promoted; {old} stopped")
        }
        Strategy::BlueGreen if next.standby.is_some() => format!("standby version {} stopped", next.standby.take().expect("checked")),
        s if s.is_bandit() && next.arms.len() > 1 => {
            let best = best_arm.ok_or_else(|| ApiError::invalid("strategy", "no arm has feedback yet: send rewards to /v2/models/HANDLE/feedback first"))?;
            next.stable = best;
            next.arms = vec![best];
            format!("bandit: version {best} won")
        }
        _ => return Err(ApiError::invalid("deployment", format!("`{}` has nothing to promote (no candidate, standby or competing arms)", next.handle))),
    };
    Ok((next, detail))
}

/// `kiln rollback`: drop the canary candidate, go back to the blue-green standby, or drop the
/// newest bandit arm.
pub fn rollback(mut next: Deployment) -> Transition {
    let detail = if let Some(candidate) = next.candidate.take() {
        format!("candidate version {candidate} rolled back; {} serves all traffic", next.stable)
    } else if let Some(standby) = next.standby {
        next.standby = Some(next.stable);
        next.stable = standby;
        format!("version {standby} active again, {} on standby", next.standby.expect("set"))
    } else if next.arms.len() > 1 {
        let newest = next.arms.iter().copied().filter(|v| *v != next.stable).max().expect("two arms");
        next.arms.retain(|v| *v != newest);
        format!("arm {newest} removed")
    } else {
        return Err(ApiError::invalid("deployment", format!("`{}` has nothing to roll back to", next.handle)));
    };
    Ok((next, detail))
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    enum Step {
        Deploy(i64, &'static str),
        Promote(Option<i64>),
        Rollback,
    }

    /// Runs the steps from nothing deployed; one line a step: the deployment after it (or
    /// the refusal, which leaves it as it was) and its history line.
    fn walk(steps: &[Step]) -> String {
        let mut current: Option<Deployment> = None;
        let mut lines = Vec::new();
        for step in steps {
            let (label, result) = match step {
                Step::Deploy(version, strategy) => {
                    let request = Deploy { model_version: *version, strategy: Strategy::parse(strategy).unwrap(), runner: None, expected_revision: None };
                    (format!("deploy v{version} {strategy}"), deploy("iris", current.as_ref(), &request, 0))
                }
                Step::Promote(best) => ("promote".to_owned(), promote(current.clone().expect("deployed"), *best)),
                Step::Rollback => ("rollback".to_owned(), rollback(current.clone().expect("deployed"))),
            };
            match result {
                Ok((next, detail)) => {
                    let d = &next;
                    lines.push(format!(
                        "{label:<28} → {} stable {} candidate {:?} standby {:?} arms {:?} | {detail}",
                        d.strategy, d.stable, d.candidate, d.standby, d.arms
                    ));
                    current = Some(next);
                }
                Err(error) => lines.push(format!("{label:<28} → refused: {}", error.message)),
            }
        }
        lines.join("\n")
    }

    #[test]
    fn blue_green_then_canary_then_back() {
        expect![[r#"
            deploy v1 blue-green         → blue-green stable 1 candidate None standby None arms [] | blue-green: version 1 serves all traffic
            rollback                     → refused: deployment: `iris` has nothing to roll back to
            promote                      → refused: deployment: `iris` has nothing to promote (no candidate, standby or competing arms)
            deploy v2 blue-green         → blue-green stable 2 candidate None standby Some(1) arms [] | blue-green: version 2 active, 1 on standby
            rollback                     → blue-green stable 1 candidate None standby Some(2) arms [] | version 1 active again, 2 on standby
            promote                      → blue-green stable 1 candidate None standby None arms [] | standby version 2 stopped
            deploy v1 canary:20          → refused: model_version: version 1 is already the stable version of `iris`
            deploy v3 canary:20          → canary:20 stable 1 candidate Some(3) standby None arms [] | canary: 20% to version 3, the rest to 1
            rollback                     → canary:20 stable 1 candidate None standby None arms [] | candidate version 3 rolled back; 1 serves all traffic
            deploy v3 canary:50          → canary:50 stable 1 candidate Some(3) standby None arms [] | canary: 50% to version 3, the rest to 1
            promote                      → canary:50 stable 3 candidate None standby None arms [] | version 3 promoted; 1 stopped"#]]
        .assert_eq(&walk(&[
            Step::Deploy(1, "blue-green"),
            Step::Rollback,
            Step::Promote(None),
            Step::Deploy(2, "blue-green"),
            Step::Rollback,
            Step::Promote(None),
            Step::Deploy(1, "canary:20"),
            Step::Deploy(3, "canary:20"),
            Step::Rollback,
            Step::Deploy(3, "canary:50"),
            Step::Promote(None),
        ]));
    }

    #[test]
    fn bandit_arms_join_leave_and_one_wins() {
        expect![[r#"
            deploy v1 bandit:thompson    → bandit:thompson stable 1 candidate None standby None arms [1] | bandit:thompson: version 1 serves all traffic
            deploy v2 bandit:thompson    → bandit:thompson stable 1 candidate None standby None arms [1, 2] | bandit:thompson: arms [1, 2]
            deploy v3 bandit:thompson    → bandit:thompson stable 1 candidate None standby None arms [1, 2, 3] | bandit:thompson: arms [1, 2, 3]
            rollback                     → bandit:thompson stable 1 candidate None standby None arms [1, 2] | arm 3 removed
            promote                      → refused: strategy: no arm has feedback yet: send rewards to /v2/models/HANDLE/feedback first
            promote                      → bandit:thompson stable 2 candidate None standby None arms [2] | bandit: version 2 won
            deploy v4 blue-green         → blue-green stable 4 candidate None standby Some(2) arms [] | blue-green: version 4 active, 2 on standby"#]]
        .assert_eq(&walk(&[
            Step::Deploy(1, "bandit:thompson"),
            Step::Deploy(2, "bandit:thompson"),
            Step::Deploy(3, "bandit:thompson"),
            Step::Rollback,
            Step::Promote(None),
            Step::Promote(Some(2)),
            Step::Deploy(4, "blue-green"),
        ]));
    }

    #[test]
    fn a_runner_is_one_of_two() {
        let request = Deploy { model_version: 1, strategy: Strategy::BlueGreen, runner: Some("docker".into()), expected_revision: None };
        let error = deploy("iris", None, &request, 0).expect_err("docker is not a runner");
        assert_eq!(error.message, "runner: 'docker' is not a runner (podman or process)");
    }
}
