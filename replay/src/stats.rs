//! Order statistics with the design's exact conventions.

/// Lower median: `sorted[(n − 1) / 2]`; `None` for an empty slice. `sorted` must be ascending.
pub fn lower_median(sorted: &[u64]) -> Option<u64> {
    (!sorted.is_empty()).then(|| sorted[(sorted.len() - 1) / 2])
}

/// Nearest-rank percentile: `sorted[ceil(p·n/100) − 1]`; `None` for an empty slice.
pub fn nearest_rank(sorted: &[u64], p: u64) -> Option<u64> {
    let n = sorted.len() as u64;
    if n == 0 {
        return None;
    }
    let rank = (p * n).div_ceil(100).max(1);
    Some(sorted[(rank.min(n) - 1) as usize])
}

/// Lower median and median absolute deviation of `values` (sorted in place).
pub fn median_and_mad(values: &mut [u64]) -> (Option<u64>, Option<u64>) {
    values.sort_unstable();
    let Some(median) = lower_median(values) else {
        return (None, None);
    };
    let mut dev: Vec<u64> = values.iter().map(|v| v.abs_diff(median)).collect();
    dev.sort_unstable();
    (Some(median), lower_median(&dev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventions() {
        assert_eq!(lower_median(&[]), None);
        assert_eq!(lower_median(&[1, 2]), Some(1));
        assert_eq!(lower_median(&[1, 2, 3]), Some(2));
        let xs: Vec<u64> = (1..=20).collect();
        assert_eq!(nearest_rank(&xs, 95), Some(19));
        assert_eq!(nearest_rank(&xs, 50), Some(10));
        assert_eq!(nearest_rank(&[7], 95), Some(7));
        assert_eq!(median_and_mad(&mut [10, 12, 9, 30]), (Some(10), Some(1)));
    }
}
