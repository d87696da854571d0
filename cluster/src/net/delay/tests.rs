//! Seeded statistical checks of every distribution, the text syntax and the TOML forms.

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;

const SAMPLES: usize = 100_000;

fn samples(distribution: &DelayDistribution, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..SAMPLES)
        .map(|_| distribution.sample(&mut rng).as_secs_f64() * 1000.0)
        .collect()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn stddev(values: &[f64]) -> f64 {
    let mean = mean(values);
    let variance =
        values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (values.len() - 1) as f64;
    variance.sqrt()
}

fn minimum(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn maximum(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// `actual` within `relative` of `expected`; tolerances below are at least five standard
/// errors, so a seeded run that passes keeps passing and a real bias still fails.
fn assert_close(what: &str, actual: f64, expected: f64, relative: f64) {
    assert!(
        (actual - expected).abs() <= relative * expected.abs(),
        "{what}: {actual} is not within {}% of {expected}",
        relative * 100.0
    );
}

fn parse(text: &str) -> DelayDistribution {
    text.parse()
        .unwrap_or_else(|error| panic!("{text}: {error}"))
}

#[test]
fn constant_is_constant() {
    let values = samples(&parse("const(50)"), 1);
    assert!(values.iter().all(|&v| (v - 50.0).abs() < 1e-6));
}

#[test]
fn uniform_stays_in_bounds_with_the_right_moments() {
    let distribution = parse("uniform(1,3)");
    let values = samples(&distribution, 2);
    assert!(minimum(&values) >= 1.0 && maximum(&values) < 3.0 + 1e-9);
    assert!(minimum(&values) < 1.001 && maximum(&values) > 2.999);
    assert_close("uniform mean", mean(&values), 2.0, 0.005);
    // Variance of U(a, b) is (b - a)^2 / 12.
    assert_close(
        "uniform stddev",
        stddev(&values),
        (4.0f64 / 12.0).sqrt(),
        0.01,
    );
    assert_eq!(distribution.mean_ms(), Some(2.0));
}

#[test]
fn normal_has_its_mean_and_stddev_and_is_truncated_at_zero() {
    let values = samples(&parse("normal(50,5)"), 3);
    assert_close("normal mean", mean(&values), 50.0, 0.002);
    assert_close("normal stddev", stddev(&values), 5.0, 0.015);

    // Mean 1, stddev 5: nearly half the raw draws are negative and get resampled.
    let truncated = parse("normal(1,5)");
    let values = samples(&truncated, 4);
    assert!(minimum(&values) >= 0.0);
    let expected = truncated.mean_ms().unwrap();
    assert!(expected > 4.0 && expected < 5.0, "{expected}");
    assert_close("truncated normal mean", mean(&values), expected, 0.01);
}

#[test]
fn exponential_has_its_mean() {
    let values = samples(&parse("exp(20)"), 5);
    assert!(minimum(&values) >= 0.0);
    assert_close("exponential mean", mean(&values), 20.0, 0.015);
    assert_close("exponential stddev", stddev(&values), 20.0, 0.03);
}

#[test]
fn pareto_has_its_minimum_mean_and_median() {
    // alpha = 3: mean alpha * xm / (alpha - 1) = 15 with finite variance.
    let distribution = parse("pareto(10,3)");
    let values = samples(&distribution, 6);
    assert!(minimum(&values) >= 10.0);
    assert!(minimum(&values) < 10.01);
    assert_eq!(distribution.mean_ms(), Some(15.0));
    assert_close("pareto mean", mean(&values), 15.0, 0.01);

    // alpha = 1.5: infinite variance, so check the median xm * 2^(1/alpha) instead.
    let heavy = parse("pareto(10,1.5)");
    assert_eq!(heavy.mean_ms(), Some(30.0));
    let mut values = samples(&heavy, 7);
    values.sort_by(f64::total_cmp);
    assert_close(
        "pareto median",
        values[SAMPLES / 2],
        10.0 * 2f64.powf(1.0 / 1.5),
        0.01,
    );
    assert_eq!(parse("pareto(10,1)").mean_ms(), None);
}

#[test]
fn mixture_mean_is_the_weighted_mean_of_its_components() {
    let distribution = parse("mix(0.9*exp(5),0.1*pareto(50,3))");
    let expected = 0.9 * 5.0 + 0.1 * 75.0;
    assert_close(
        "mixture mean_ms",
        distribution.mean_ms().unwrap(),
        expected,
        1e-12,
    );
    let values = samples(&distribution, 8);
    assert_close("mixture mean", mean(&values), expected, 0.03);
    // exp(5) exceeds 50 with probability e^-10, so draws >= 50 are the Pareto component's.
    let tail = values.iter().filter(|&&v| v >= 50.0).count() as f64 / SAMPLES as f64;
    assert_close("mixture weight", tail, 0.1, 0.05);

    // Weights are relative: 9 and 1 mean the same as 0.9 and 0.1.
    let unnormalised = parse("mix(9*exp(5),1*pareto(50,3))");
    assert_close(
        "relative weights",
        unnormalised.mean_ms().unwrap(),
        expected,
        1e-12,
    );
    assert_eq!(parse("mix(0.5*exp(5),0.5*pareto(1,0.9))").mean_ms(), None);
}

#[test]
fn shift_adds_its_offset() {
    let values = samples(&parse("50+exp(5)"), 9);
    assert!(minimum(&values) >= 50.0);
    assert_close("shifted mean", mean(&values), 55.0, 0.005);
}

#[test]
fn same_seed_same_samples_and_samples_are_capped() {
    let distribution = parse("mix(0.9*exp(5),0.1*pareto(50,1.2))");
    assert_eq!(samples(&distribution, 10), samples(&distribution, 10));
    // Shape 0.01 draws astronomically large values; they come out capped, never panicking.
    let values = samples(&parse("pareto(1,0.01)"), 11);
    assert!(maximum(&values) <= MAX_SAMPLE_MS + 1e-6);
    assert!(
        values
            .iter()
            .filter(|&&v| v >= MAX_SAMPLE_MS - 1e-6)
            .count()
            > SAMPLES / 2
    );
}

#[test]
fn text_round_trips_through_display() {
    let canonical = [
        "const(50)",
        "const(0)",
        "uniform(1,3)",
        "uniform(0.25,0.25)",
        "normal(50,5)",
        "normal(0,1.5)",
        "exp(20)",
        "exp(0.6024096385542169)",
        "pareto(10,1.5)",
        "pareto(0.235,10)",
        "50+exp(5)",
        "10+20+normal(3,1)",
        "mix(0.9*exp(5),0.1*pareto(50,1.2))",
        "mix(1*const(1))",
        "mix(0.5*(40+exp(5)),0.5*mix(0.5*uniform(1,2),0.5*const(7)))",
        "75+mix(0.9122*pareto(0.235,10),0.0878*exp(0.6024096385542169))",
    ];
    for text in canonical {
        let distribution = parse(text);
        assert_eq!(distribution.to_string(), text);
        assert_eq!(parse(&distribution.to_string()), distribution);
    }
    // Accepted spellings that print canonically.
    let equivalent = [
        ("50", "const(50)"),
        (" exponential ( 20 ) ", "exp(20)"),
        ("CONSTANT(5)", "const(5)"),
        ("1e3+exp(2.5e-1)", "1000+exp(0.25)"),
        (
            "mixture(0.1*50+exp(5), 0.9*exp(1))",
            "mix(0.1*(50+exp(5)),0.9*exp(1))",
        ),
        ("((exp(5)))", "exp(5)"),
        ("5+(10+exp(1))", "5+10+exp(1)"),
    ];
    for (text, printed) in equivalent {
        let distribution = parse(text);
        assert_eq!(distribution.to_string(), printed, "{text}");
        assert_eq!(parse(printed), distribution);
    }
}

#[test]
fn bad_specs_name_the_problem() {
    let nested_too_deep = format!("{}exp(1){}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    let too_many = format!(
        "mix({})",
        vec!["1*exp(1)"; MAX_MIXTURE_COMPONENTS + 1].join(",")
    );
    let cases = [
        ("", "expected a distribution"),
        ("expo(5)", "column 1: unknown distribution 'expo'"),
        ("exp(5", "expected ')', found the end of the input"),
        ("exp(5,6)", "column 6: expected ')', found ','"),
        ("exp(abc)", "expected a number for mean_ms, found 'abc'"),
        ("uniform(1)", "expected ',', found ')'"),
        ("exp(inf)", "found 'inf'"),
        ("exp(1e999)", "mean_ms inf must be a non-negative number"),
        ("exp(-5)", "exp: mean_ms -5 must be a non-negative number"),
        ("exp(1e7)", "exceeds the limit"),
        ("uniform(3,1)", "max_ms 1 is below min_ms 3"),
        ("pareto(0,1.5)", "scale_ms must be positive"),
        ("pareto(10,0)", "shape 0 must be positive"),
        ("mix()", "expected a weight"),
        ("mix(0*exp(5))", "weight 0 must be positive"),
        ("mix(0.5 exp(5))", "expected '*', found 'exp'"),
        ("mix(0.5*exp(5);", "unexpected character ';'"),
        ("50+", "found the end of the input"),
        ("exp(5) exp(6)", "column 8: unexpected 'exp' after the end"),
        ("1.2.3", "bad number '1.2.3'"),
        ("-", "bad number '-'"),
        ("preset:", "expected a preset name"),
        (&nested_too_deep, "nested more than 8 levels deep"),
        (&too_many, "more than 16 mixture components"),
    ];
    for (text, expected) in cases {
        let error = text.parse::<DelayDistribution>().unwrap_err().to_string();
        assert!(
            error.contains(expected),
            "{text:?}: {error:?} lacks {expected:?}"
        );
        assert!(error.contains("invalid configuration delay"), "{error}");
    }
    let long = "1+".repeat(600) + "exp(1)";
    assert!(matches!(
        long.parse::<DelayDistribution>(),
        Err(Error::LimitExceeded { .. })
    ));
}

#[test]
fn validate_bounds_depth_of_built_values() {
    let mut distribution = parse("exp(1)");
    for _ in 0..MAX_DEPTH - 1 {
        distribution = DelayDistribution::shifted(1.0, distribution);
    }
    distribution.validate().unwrap();
    let too_deep = DelayDistribution::shifted(1.0, distribution);
    assert!(too_deep
        .validate()
        .unwrap_err()
        .to_string()
        .contains("nested"));
    assert!(DelayDistribution::mixture([]).validate().is_err());
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Holder {
    delay: DelayDistribution,
}

#[test]
fn toml_accepts_tables_and_text_and_round_trips() {
    let cases = [
        (r#"delay = { type = "constant", ms = 50 }"#, "const(50)"),
        (
            r#"delay = { type = "uniform", min_ms = 1, max_ms = 3 }"#,
            "uniform(1,3)",
        ),
        (
            r#"delay = { type = "normal", mean_ms = 50, stddev_ms = 5.5 }"#,
            "normal(50,5.5)",
        ),
        (
            r#"delay = { type = "exponential", mean_ms = 20 }"#,
            "exp(20)",
        ),
        (
            r#"delay = { type = "pareto", scale_ms = 10, shape = 1.5 }"#,
            "pareto(10,1.5)",
        ),
        (
            r#"delay = { type = "shifted", offset_ms = 50, inner = "exp(5)" }"#,
            "50+exp(5)",
        ),
        (
            r#"delay = { type = "mixture", components = [
                { weight = 0.9, delay = { type = "exponential", mean_ms = 5 } },
                { weight = 0.1, delay = "pareto(50,1.2)" } ] }"#,
            "mix(0.9*exp(5),0.1*pareto(50,1.2))",
        ),
        (r#"delay = "75+preset:linkedin-ssd""#, ""),
    ];
    for (text, printed) in cases {
        let holder: Holder = toml::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        if !printed.is_empty() {
            assert_eq!(holder.delay.to_string(), printed);
        }
        let written = toml::to_string(&holder).unwrap();
        assert!(written.contains("type = "), "{written}");
        let read_back: Holder =
            toml::from_str(&written).unwrap_or_else(|e| panic!("{written}: {e}"));
        assert_eq!(read_back, holder);
    }
}

#[test]
fn toml_rejects_bad_distributions_clearly() {
    let cases = [
        (
            r#"delay = { type = "exponential", mean_ms = -1 }"#,
            "must be a non-negative",
        ),
        (
            r#"delay = { type = "exponential", mean = 1 }"#,
            "unknown field `mean`",
        ),
        (
            r#"delay = { type = "lognormal", mu = 1 }"#,
            "unknown variant `lognormal`",
        ),
        (r#"delay = "exp(5""#, "expected ')'"),
        (r#"delay = "expo(5)""#, "unknown distribution 'expo'"),
        ("delay = 5", "a delay distribution"),
    ];
    for (text, expected) in cases {
        let error = toml::from_str::<Holder>(text).unwrap_err().to_string();
        assert!(
            error.contains(expected),
            "{text}: {error:?} lacks {expected:?}"
        );
    }
}
