//! Which model version answers a request: the deployment's strategy, decided in memory in
//! well under a microsecond (canary: one random draw; bandits: a draw per arm).

use kiln_api::{Deployment, Strategy};
use rand::Rng;
use rand_distr::{Beta, Distribution};

/// What one arm of a bandit has earned so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Arm {
    pub version: i64,
    /// Sum of rewards (each in [0, 1]) and how many there were.
    pub reward_sum: f64,
    pub rewards: u64,
}

impl Arm {
    fn mean(&self) -> Option<f64> {
        (self.rewards > 0).then(|| self.reward_sum / self.rewards as f64)
    }
}

/// The routing decision for one request.
pub fn pick(deployment: &Deployment, arms: &[Arm], rng: &mut impl Rng) -> i64 {
    match deployment.strategy {
        Strategy::BlueGreen => deployment.stable,
        Strategy::Canary { percent } => match deployment.candidate {
            Some(candidate) if rng.random_range(0..100u8) < percent => candidate,
            _ => deployment.stable,
        },
        Strategy::EpsilonGreedy { epsilon } => epsilon_greedy(arms, epsilon, rng).unwrap_or(deployment.stable),
        Strategy::Thompson => thompson(arms, rng).unwrap_or(deployment.stable),
    }
}

/// With probability `epsilon` a random arm other than the best, else the best by mean
/// reward. An arm without feedback yet is tried first.
pub fn epsilon_greedy(arms: &[Arm], epsilon: f64, rng: &mut impl Rng) -> Option<i64> {
    if let Some(untried) = arms.iter().find(|a| a.rewards == 0) {
        return Some(untried.version);
    }
    let best = arms.iter().max_by(|a, b| a.mean().partial_cmp(&b.mean()).unwrap_or(std::cmp::Ordering::Equal))?;
    if arms.len() > 1 && rng.random::<f64>() < epsilon {
        let others: Vec<&Arm> = arms.iter().filter(|a| a.version != best.version).collect();
        return Some(others[rng.random_range(0..others.len())].version);
    }
    Some(best.version)
}

/// The arm whose draw from Beta(1 + successes, 1 + failures) is highest.
pub fn thompson(arms: &[Arm], rng: &mut impl Rng) -> Option<i64> {
    arms.iter()
        .map(|a| {
            let failures = (a.rewards as f64 - a.reward_sum).max(0.0);
            let draw = Beta::new(1.0 + a.reward_sum, 1.0 + failures).map(|beta| beta.sample(rng)).unwrap_or(0.5);
            (a.version, draw)
        })
        .max_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal))
        .map(|(version, _)| version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn deployment(strategy: Strategy) -> Deployment {
        Deployment {
            handle: "iris".into(),
            strategy,
            stable: 1,
            candidate: Some(2),
            standby: None,
            arms: vec![1, 2],
            runner: None,
            updated_at: 0,
            revision: 0,
            history: vec![],
        }
    }

    fn share(strategy: Strategy, arms: &[Arm], version: i64) -> f64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let d = deployment(strategy);
        (0..10_000).filter(|_| pick(&d, arms, &mut rng) == version).count() as f64 / 10_000.0
    }

    #[test]
    fn canary_splits_by_percent() {
        assert!((share(Strategy::Canary { percent: 10 }, &[], 2) - 0.10).abs() < 0.02);
        assert_eq!(share(Strategy::Canary { percent: 0 }, &[], 2), 0.0);
        assert_eq!(share(Strategy::Canary { percent: 100 }, &[], 2), 1.0);
        assert_eq!(share(Strategy::BlueGreen, &[], 1), 1.0);
    }

    #[test]
    fn bandits_favour_the_better_arm() {
        let arms = [Arm { version: 1, reward_sum: 30.0, rewards: 100 }, Arm { version: 2, reward_sum: 80.0, rewards: 100 }];
        let greedy = share(Strategy::EpsilonGreedy { epsilon: 0.1 }, &arms, 2);
        assert!((greedy - 0.9).abs() < 0.02, "{greedy}");
        assert!(share(Strategy::Thompson, &arms, 2) > 0.99);
        let untried = [Arm { version: 1, reward_sum: 30.0, rewards: 100 }, Arm { version: 2, ..Default::default() }];
        assert_eq!(share(Strategy::EpsilonGreedy { epsilon: 0.1 }, &untried, 2), 1.0, "an untried arm is tried first");
    }
}
