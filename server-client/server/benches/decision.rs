//! How long the gateway takes to pick a version (`cargo xtask bench serving` runs this):
//! canary, epsilon-greedy and Thompson sampling over 2 and 4 arms.

use criterion::{Criterion, criterion_group, criterion_main};
use kiln_api::{Deployment, Strategy};
use kiln_server::serving::strategy::{Arm, pick};

fn deployment(strategy: Strategy, arms: usize) -> Deployment {
    Deployment {
        handle: "iris".into(),
        strategy,
        stable: 1,
        candidate: Some(2),
        standby: None,
        arms: (1..=arms as i64).collect(),
        runner: None,
        updated_at: 0,
        revision: 0,
        history: vec![],
    }
}

fn arms(n: usize) -> Vec<Arm> {
    (1..=n as i64).map(|v| Arm { version: v, reward_sum: 10.0 * v as f64, rewards: 100 }).collect()
}

fn decisions(c: &mut Criterion) {
    let mut rng = rand::rng();
    for (name, strategy) in
        [("canary:10", Strategy::Canary { percent: 10 }), ("epsilon-greedy:0.1", Strategy::EpsilonGreedy { epsilon: 0.1 }), ("thompson", Strategy::Thompson)]
    {
        for n in [2, 4] {
            let d = deployment(strategy, n);
            let a = arms(n);
            c.bench_function(&format!("pick {name}, {n} arms"), |b| b.iter(|| pick(std::hint::black_box(&d), std::hint::black_box(&a), &mut rng)));
        }
    }
}

criterion_group!(benches, decisions);
criterion_main!(benches);
