use super::*;
use cluster::net::DelayDistribution;

fn exp(mean_ms: f64) -> Delay {
    Delay::Model(DelayDistribution::Exponential { mean_ms })
}

/// The paper's validation setup (section 5.2 and Figure 4's exponential sweep): write
/// requests exponential with mean 20 ms, acks, read requests and read responses mean 10 ms.
fn validation_delays() -> ReplicaDelays {
    ReplicaDelays {
        write: exp(20.0),
        ack: exp(10.0),
        read: exp(10.0),
        response: exp(10.0),
    }
}

fn run(model: &WarsModel, trials: u64, seed: u64) -> Prediction {
    simulate(
        model,
        &SimulationOptions {
            trials,
            seed,
            threads: 0,
        },
    )
    .unwrap()
}

/// Composite Simpson's rule on [a, b] with `intervals` (even) pieces.
fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64, intervals: usize) -> f64 {
    let h = (b - a) / intervals as f64;
    let mut sum = f(a) + f(b);
    for i in 1..intervals {
        sum += f(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    sum * h / 3.0
}

/// P(stale) at t for N replicas, R = W = 1, W ~ Exp(rate l), A ~ Exp(rate a),
/// R, S ~ Exp(rate m), derived independently of the simulator:
///
/// Label the read's responder 1 (which replica answers first depends on R and S only, so it
/// is independent of the write). The read is stale iff W_1 > c + t + R_1. Since
/// W_1 <= W_1 + A_1, replica 1 cannot be the one that committed, so c = M = min over the
/// other N-1 replicas of D_j = W_j + A_j, and P(stale) = P(W_1 > M + t + R_1)
/// = e^{-l t} E[e^{-l M}] E[e^{-l R_1}] by the memorylessness of W_1 and independence.
///
/// - E[e^{-l M}] = 1 - l * integral_0^inf e^{-l m} P(D > m)^{N-1} dm (integration by
///   parts), with P(D > m) = (a e^{-l m} - l e^{-a m}) / (a - l) (hypoexponential).
/// - R_1 is R of the pair with the smallest R + S: joint density
///   N m e^{-m r} m e^{-m s} G(r + s)^{N-1}, G(x) = P(R + S > x) = e^{-m x} (1 + m x),
///   so E[e^{-l R_1}] is a double integral, done here by Simpson's rule.
fn stale_probability_exponential(n: usize, l: f64, a: f64, m: f64, t: f64) -> f64 {
    let others = (n - 1) as i32;
    let survival_d = |x: f64| (a * (-l * x).exp() - l * (-a * x).exp()) / (a - l);
    let upper = 60.0 / l.min(a).min(m);
    let write_term = 1.0
        - l * simpson(
            |x| (-l * x).exp() * survival_d(x).powi(others),
            0.0,
            upper,
            20_000,
        );
    let g = |x: f64| (-m * x).exp() * (1.0 + m * x);
    let inner = |r: f64| {
        simpson(
            |s| n as f64 * m * m * (-m * (r + s)).exp() * g(r + s).powi(others),
            0.0,
            upper,
            800,
        )
    };
    let read_term = simpson(|r| (-l * r).exp() * inner(r), 0.0, upper, 800);
    (-l * t).exp() * write_term * read_term
}

#[test]
fn independent_calculation_agrees_with_its_closed_form() {
    // The closed form of the two integrals above for N = 3, rates l = 1/20, a = m = 1/10:
    // E[e^{-lM}] = 1 - l [a^2/(3l) - 2al/(2l+a) + l^2/(l+2a)] / (a-l)^2 = 7/15, and
    // E[e^{-lR_1}] = (N m^2 / l) [I(3m) - I(3m+l)], I(c) = 1/c + 2m/c^2 + 2m^2/c^3.
    let (l, a, m) = (0.05_f64, 0.1_f64, 0.1_f64);
    let write_term = 1.0
        - l * (a * a / (3.0 * l) - 2.0 * a * l / (2.0 * l + a) + l * l / (l + 2.0 * a))
            / (a - l).powi(2);
    let i = |c: f64| 1.0 / c + 2.0 * m / (c * c) + 2.0 * m * m / (c * c * c);
    let read_term = 3.0 * m * m / l * (i(3.0 * m) - i(3.0 * m + l));
    let closed = write_term * read_term;
    let numeric = stale_probability_exponential(3, l, a, m, 0.0);
    assert!((write_term - 7.0 / 15.0).abs() < 1e-12);
    assert!((closed - numeric).abs() < 1e-6, "{closed} vs {numeric}");
    // In exact fractions: E[e^{-lR_1}] = 2482/3087, P(stale at t) = (2482/6615) e^{-t/20},
    // P(consistent at t = 0) = 4133/6615 = 0.624792...: the figure quoted in the README.
    assert!((read_term - 2482.0 / 3087.0).abs() < 1e-12, "{read_term}");
    assert!(
        (1.0 - closed - 4133.0 / 6615.0).abs() < 1e-12,
        "{}",
        1.0 - closed
    );
}

#[test]
fn n3_r1_w1_exponential_matches_the_independent_calculation() {
    let model = WarsModel::uniform(3, 1, 1, validation_delays());
    let trials = 200_000;
    let prediction = run(&model, trials, 7);
    for t in [0.0, 5.0, 20.0, 60.0] {
        let expected = 1.0 - stale_probability_exponential(3, 0.05, 0.1, 0.1, t);
        let got = prediction.probability_consistent(t);
        // Five standard errors of a binomial proportion: a false failure is ~1e-6 likely.
        let tolerance = 5.0 * (expected * (1.0 - expected) / trials as f64).sqrt() + 1e-9;
        assert!(
            (got - expected).abs() < tolerance,
            "t={t}: simulated {got}, calculated {expected}, tolerance {tolerance}"
        );
    }
}

#[test]
fn overlapping_quorums_are_never_stale() {
    let heavy = ReplicaDelays {
        write: parse_delay("write-delay", "mix(0.5*pareto(1,1.1),0.5*exp(50))").unwrap(),
        ack: parse_delay("ack-delay", "uniform:0,100").unwrap(),
        read: parse_delay("read-delay", "normal:5,10").unwrap(),
        response: parse_delay("response-delay", "const:3").unwrap(),
    };
    for (n, r, w) in [
        (3, 2, 2),
        (3, 1, 3),
        (3, 3, 1),
        (5, 3, 3),
        (5, 2, 4),
        (1, 1, 1),
    ] {
        let prediction = run(&WarsModel::uniform(n, r, w, heavy.clone()), 20_000, 3);
        assert_eq!(
            prediction.probability_consistent(0.0),
            1.0,
            "N={n} R={r} W={w}"
        );
        assert_eq!(prediction.t_for_probability(1.0), 0.0);
    }
    // A partial quorum with the same delays is stale sometimes: the check above can fail.
    let partial = run(&WarsModel::uniform(3, 1, 1, heavy), 20_000, 3);
    assert!(partial.probability_consistent(0.0) < 0.99);
}

#[test]
fn t_visibility_is_monotone_and_reaches_one() {
    let model = scenario_model("ymmr", 3, 1, 1).unwrap();
    let prediction = run(&model, 50_000, 11);
    let mut previous = 0.0;
    for t in (0..2000).map(|step| step as f64 * 2.5) {
        let p = prediction.probability_consistent(t);
        assert!(p >= previous, "P({t}) = {p} < {previous}");
        previous = p;
    }
    assert_eq!(prediction.probability_consistent(f64::MAX), 1.0);
    let t999 = prediction.t_for_probability(0.999);
    assert!(prediction.probability_consistent(t999) >= 0.999);
}

#[test]
fn reproduces_the_papers_production_figures() {
    // Section 5.4: N=3, R=W=1, P(consistent) immediately after commit and 10 ms later. The
    // paper simulated 10,000 writes per curve, so its own figures carry about +-0.6 points
    // of sampling error; two points of tolerance.
    for (name, at_commit, at_10ms) in [
        ("ymmr", 0.893, 0.939),
        ("lnkd-ssd", 0.975, 1.0),
        ("lnkd-disk", 0.439, 0.925),
    ] {
        let model = scenario_model(name, 3, 1, 1).unwrap();
        let prediction = run(&model, 50_000, 5);
        for (t, paper) in [(0.0, at_commit), (10.0, at_10ms)] {
            let got = prediction.probability_consistent(t);
            assert!(
                (got - paper).abs() < 0.02,
                "{name} t={t}: {got} vs the paper's {paper}"
            );
        }
    }
}

#[test]
fn wan_reads_wait_for_remote_replicas() {
    assert_eq!(scenario("wan", 3).unwrap().len(), 3);
    let model = scenario_model("wan", 3, 2, 1).unwrap();
    let prediction = run(&model, 50_000, 2);
    // R = 2 needs a remote response: at least two 75 ms hops.
    assert!(prediction.read_latency(0.0) >= 150.0);
    assert!(prediction.write_latency(0.5) < 75.0);
    // R = W = 1: a read coordinated in another datacenter than the write's (2 in 3) misses
    // it until the write crosses the WAN, so P(consistent) stays near 1/3 until 75 ms.
    let partial = run(&scenario_model("wan", 3, 1, 1).unwrap(), 50_000, 2);
    let early = partial.probability_consistent(0.0);
    assert!((0.30..0.45).contains(&early), "{early}");
    assert!(partial.probability_consistent(150.0) > 0.95);
}

#[test]
fn result_depends_on_seed_and_trials_only() {
    let model = WarsModel::uniform(3, 1, 1, validation_delays());
    let options = |threads, seed| SimulationOptions {
        trials: 100_000,
        seed,
        threads,
    };
    let one = simulate(&model, &options(1, 9)).unwrap();
    let four = simulate(&model, &options(4, 9)).unwrap();
    let other = simulate(&model, &options(4, 10)).unwrap();
    for t in [0.0, 3.0, 30.0] {
        assert_eq!(
            one.probability_consistent(t),
            four.probability_consistent(t)
        );
    }
    assert_eq!(one.read_latency(0.99), four.read_latency(0.99));
    assert_ne!(one.read_latency(0.5), other.read_latency(0.5));
}

#[test]
fn latencies_are_order_statistics() {
    let constant = ReplicaDelays {
        write: parse_delay("write-delay", "const:4").unwrap(),
        ack: parse_delay("ack-delay", "1").unwrap(),
        read: parse_delay("read-delay", "const(2)").unwrap(),
        response: parse_delay("response-delay", "3").unwrap(),
    };
    let prediction = run(&WarsModel::uniform(3, 2, 2, constant.clone()), 1000, 1);
    assert_eq!(prediction.write_latency(0.5), 5.0);
    assert_eq!(prediction.read_latency(0.999), 5.0);
    assert_eq!(prediction.write_latency_mean(), 5.0);
    // W = 1, R = 1 with constant delays: the write reaches every replica at 4 ms, the commit
    // is at 5 ms, a read request arrives at 5 + t + 2 ms: always consistent, threshold -3.
    let partial = run(&WarsModel::uniform(3, 1, 1, constant), 1000, 1);
    assert_eq!(partial.probability_consistent(-3.0), 1.0);
    assert_eq!(partial.probability_consistent(-3.5), 0.0);
}

#[test]
fn bad_models_are_rejected_with_the_flag_named() {
    let delays = validation_delays();
    let error = |model: WarsModel| {
        simulate(&model, &SimulationOptions::default())
            .unwrap_err()
            .to_string()
    };
    assert!(error(WarsModel::uniform(3, 4, 1, delays.clone())).starts_with("--r:"));
    assert!(error(WarsModel::uniform(3, 1, 0, delays.clone())).starts_with("--w:"));
    assert!(error(WarsModel::uniform(0, 1, 1, delays.clone())).starts_with("--n:"));
    let mut two = WarsModel::uniform(3, 1, 1, delays.clone());
    two.read_coordinator_random = true;
    two.delays.push(delays.clone());
    assert!(error(two).contains("give one"));
    let trials = simulate(
        &WarsModel::uniform(3, 1, 1, delays),
        &SimulationOptions {
            trials: 0,
            ..SimulationOptions::default()
        },
    )
    .unwrap_err();
    assert!(trials.to_string().starts_with("--trials:"));
    let parse = parse_delay("ack-delay", "exp:-3").unwrap_err().to_string();
    assert!(parse.starts_with("--ack-delay:"), "{parse}");
    assert!(parse_delay("ack-delay", "bogus:3").is_err());
    assert!(Delay::empirical(vec![]).is_err());
    assert!(Delay::empirical(vec![1.0, f64::NAN]).is_err());
    assert!(scenario("nope", 3)
        .unwrap_err()
        .to_string()
        .contains("lnkd-ssd"));
}

#[test]
fn empirical_delays_sample_their_values() {
    let constant = Delay::empirical(vec![2.0]).unwrap();
    let delays = ReplicaDelays {
        write: constant.clone(),
        ack: constant.clone(),
        read: constant.clone(),
        response: constant,
    };
    let prediction = run(&WarsModel::uniform(3, 1, 1, delays), 100, 1);
    assert_eq!(prediction.read_latency(1.0), 4.0);
}

#[test]
fn rmse_against_measured_points() {
    let model = WarsModel::uniform(3, 1, 1, validation_delays());
    let prediction = run(&model, 20_000, 4);
    let exact: Vec<(f64, f64)> = [0.0, 5.0, 50.0]
        .iter()
        .map(|&t| (t, prediction.probability_consistent(t)))
        .collect();
    assert_eq!(prediction.rmse(&exact), Some(0.0));
    let off: Vec<(f64, f64)> = exact.iter().map(|&(t, p)| (t, p - 0.1)).collect();
    assert!((prediction.rmse(&off).unwrap() - 0.1).abs() < 1e-12);
    assert_eq!(prediction.rmse(&[]), None);
}

#[test]
fn empirical_delays_match_a_discrete_closed_form() {
    // N=2, R=W=1; W is 1 or 9 ms with probability 1/2 each (independently per replica);
    // A = R = S = 1 ms. The write commits at min(W) + 1; the read asks one replica (both
    // answer at 2 ms: whichever is taken, the cases are symmetric). It is stale exactly
    // when the replica read had W = 9 while the other had W = 1: commit at 2, the request
    // arrives at 2 + t + 1, so stale for t < 6. P(consistent) = 3/4 below t = 6, then 1.
    let one = Delay::empirical(vec![1.0]).unwrap();
    let delays = ReplicaDelays {
        write: Delay::empirical(vec![1.0, 9.0]).unwrap(),
        ack: one.clone(),
        read: one.clone(),
        response: one,
    };
    let trials = 200_000;
    let prediction = run(&WarsModel::uniform(2, 1, 1, delays), trials, 3);
    let tolerance = 5.0 * (0.75f64 * 0.25 / trials as f64).sqrt();
    for t in [0.0, 3.0, 5.9] {
        let got = prediction.probability_consistent(t);
        assert!((got - 0.75).abs() < tolerance, "t={t}: {got}");
    }
    assert_eq!(prediction.probability_consistent(6.0), 1.0);
    // The read waits R + S, the write W + A of the faster replica: 2 ms, or 10 ms when
    // both drew 9 (one trial in four).
    assert_eq!(prediction.read_latency(1.0), 2.0);
    assert_eq!(prediction.write_latency(0.5), 2.0);
    assert_eq!(prediction.write_latency(0.9), 10.0);
}

#[test]
fn empirical_samples_of_exponentials_match_the_independent_calculation() {
    // The measured path: delays known only as samples (as a run's measured_delays.csv
    // gives them) give the same t-visibility as the distributions they were drawn from.
    let mut rng = StdRng::seed_from_u64(11);
    let mut samples = |mean_ms: f64| {
        let distribution = exp(mean_ms);
        Delay::empirical(
            (0..50_000)
                .map(|_| distribution.sample_ms(&mut rng))
                .collect(),
        )
        .unwrap()
    };
    let delays = ReplicaDelays {
        write: samples(20.0),
        ack: samples(10.0),
        read: samples(10.0),
        response: samples(10.0),
    };
    let trials = 200_000;
    let prediction = run(&WarsModel::uniform(3, 1, 1, delays), trials, 5);
    for t in [0.0, 5.0, 20.0, 60.0] {
        let expected = 1.0 - stale_probability_exponential(3, 0.05, 0.1, 0.1, t);
        let got = prediction.probability_consistent(t);
        // Sampling error of the trials plus that of the 50,000 samples per leg.
        let tolerance = 8.0 * (expected * (1.0 - expected) / trials as f64).sqrt() + 0.005;
        assert!(
            (got - expected).abs() < tolerance,
            "t={t}: from samples {got}, calculated {expected}"
        );
    }
}
