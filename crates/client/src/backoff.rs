//! Reconnect delays: exponential growth with jitter so that many clients dropped at once do
//! not come back in lockstep.

use rand::Rng;
use std::time::Duration;

/// Delay before reconnect attempt `attempt` (0-based): a cap of `initial * 2^attempt`
/// (at most `max`), of which a random half is waited ("equal jitter": never zero, never above
/// the cap).
pub(crate) fn delay(
    attempt: u32,
    initial: Duration,
    max: Duration,
    rng: &mut impl Rng,
) -> Duration {
    let cap = initial
        .saturating_mul(2_u32.saturating_pow(attempt.min(31)))
        .min(max);
    let half = cap / 2;
    let jitter = rng.gen_range(0..=half.as_nanos().min(u128::from(u64::MAX)) as u64);
    half + Duration::from_nanos(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_within_bounds() {
        let mut rng = rand::thread_rng();
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(5);
        for attempt in 0..64 {
            let cap = (initial * 2_u32.pow(attempt.min(20))).min(max);
            for _ in 0..50 {
                let d = delay(attempt, initial, max, &mut rng);
                assert!(
                    d >= cap / 2 && d <= cap,
                    "attempt {attempt}: {d:?} outside {cap:?}"
                );
            }
        }
        assert!(delay(0, initial, max, &mut rng) <= Duration::from_millis(100));
        assert!(delay(40, initial, max, &mut rng) >= Duration::from_millis(2500));
    }

    #[test]
    fn max_below_initial_caps_everything() {
        let mut rng = rand::thread_rng();
        let d = delay(
            0,
            Duration::from_secs(1),
            Duration::from_millis(10),
            &mut rng,
        );
        assert!(d <= Duration::from_millis(10));
        assert_eq!(
            delay(3, Duration::ZERO, Duration::ZERO, &mut rng),
            Duration::ZERO
        );
    }
}
