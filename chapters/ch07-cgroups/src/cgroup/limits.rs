//! The limits of one container, each a type that knows its own rules: what
//! the option accepts (`FromStr`, clap's parser, with the messages a student
//! sees), how it is shown (`Display`, which parses back to the same value),
//! and what the kernel is given.

use super::PIDS_MAX;
use std::fmt;
use std::str::FromStr;

/// The limits of one container; `None` leaves that controller alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub cpu: Option<CpuQuota>,
    pub pids: Option<u64>,
    pub memory: Option<MemoryLimit>,
}

/// `--cpus 0.2` as the kernel takes it: 20000 µs of CPU time per 100000 µs
/// period. The period, the smallest share and the rounding live here only:
/// a quota is made by parsing `--cpus` or by [`CpuQuota::percent`], both of
/// which keep to the kernel's floor, and is read through its getters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuQuota {
    quota_us: u64,
    period_us: u64,
}

impl CpuQuota {
    /// docker's period (and the kernel's default): 100 ms.
    pub const PERIOD_US: u64 = 100_000;
    /// The kernel's smallest quota: 1 ms per period.
    pub const MIN_QUOTA_US: u64 = 1_000;
    /// The smallest share `--cpus` takes, 0.01: the smallest quota.
    pub const MIN_CPUS: f64 = Self::MIN_QUOTA_US as f64 / Self::PERIOD_US as f64;

    /// A whole percentage of one CPU (20 = `--cpus 0.2`): what a demo asks
    /// for. 1% is the kernel's smallest quota, so 0 is refused.
    pub const fn percent(percent: u64) -> CpuQuota {
        assert!(percent >= 1, "the smallest CPU share is 1%");
        CpuQuota {
            quota_us: percent * Self::PERIOD_US / 100,
            period_us: Self::PERIOD_US,
        }
    }

    /// CPU time the container may use per period, in µs (`cpu.max`'s first number).
    pub fn quota_us(&self) -> u64 {
        self.quota_us
    }

    /// The period the quota is counted in, in µs.
    pub fn period_us(&self) -> u64 {
        self.period_us
    }

    /// A share of one CPU (0.2 = 20%) as a quota in whole microseconds; the
    /// share has passed `FromStr`'s checks.
    fn from_cpus(cpus: f64) -> CpuQuota {
        CpuQuota {
            quota_us: (cpus * Self::PERIOD_US as f64).round() as u64,
            period_us: Self::PERIOD_US,
        }
    }

    /// The share of one CPU: 0.2 for 20000 per 100000.
    pub fn share(&self) -> f64 {
        self.quota_us as f64 / self.period_us as f64
    }
}

/// `--cpus`: a fraction of one CPU, more than 0 (at least
/// [`CpuQuota::MIN_CPUS`]) and at most the machine's CPUs.
impl FromStr for CpuQuota {
    type Err = String;

    fn from_str(text: &str) -> Result<CpuQuota, String> {
        let cpus: f64 = text
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not a number of CPUs like 0.5 or 2"))?;
        let available = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        if !cpus.is_finite() {
            return Err(format!("{text} CPUs: the share must be a finite number"));
        }
        if cpus <= 0.0 {
            return Err(format!("{text} CPUs: the share must be more than 0"));
        }
        if cpus < Self::MIN_CPUS {
            return Err(format!(
                "{text} CPUs is below {} ({} ms per {} ms period, the kernel's smallest quota)",
                Self::MIN_CPUS,
                Self::MIN_QUOTA_US / 1000,
                Self::PERIOD_US / 1000
            ));
        }
        if cpus > available {
            return Err(format!(
                "{text} CPUs is more than this machine has ({available})"
            ));
        }
        Ok(CpuQuota::from_cpus(cpus))
    }
}

/// In CPUs, as `--cpus` takes it: `0.2`.
impl fmt::Display for CpuQuota {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.share())
    }
}

/// The largest `pids.max` the kernel takes: PID_MAX_LIMIT, 4194304 (2^22)
/// on 64-bit machines, the most PIDs there can ever be (a bigger number is
/// EINVAL, or ERANGE past 2^63).
pub const MAX_PIDS_LIMIT: u64 = 1 << 22;

/// `--pids-limit`: at least 1 (the container's own first process), at most
/// [`MAX_PIDS_LIMIT`].
pub fn parse_pids_limit(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("0 tasks: the container's first process needs 1".into()),
        Ok(n) if n > MAX_PIDS_LIMIT => Err(format!(
            "{text} tasks is more than the kernel's largest {PIDS_MAX} ({MAX_PIDS_LIMIT}, PID_MAX_LIMIT)"
        )),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a whole number of tasks")),
    }
}

/// `--memory 64M`: the most memory the container may use, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemoryLimit(u64);

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

impl MemoryLimit {
    /// The smallest limit accepted: below it a shell cannot even start
    /// (docker refuses less than 6 MiB too).
    pub const MIN: MemoryLimit = MemoryLimit::mib(6);

    /// A limit in whole MiB, at least [`MemoryLimit::MIN`]'s 6.
    pub const fn mib(mib: u64) -> MemoryLimit {
        assert!(mib >= 6, "a memory limit below 6M leaves no room to start");
        MemoryLimit(mib * MIB)
    }

    pub fn bytes(self) -> u64 {
        self.0
    }
}

/// `--memory`: a size like 64M, at least [`MemoryLimit::MIN`].
impl FromStr for MemoryLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<MemoryLimit, String> {
        let limit = MemoryLimit(parse_size(text)?);
        if limit < MemoryLimit::MIN {
            return Err(format!(
                "{text} is below {}, less than a process needs to start",
                MemoryLimit::MIN
            ));
        }
        Ok(limit)
    }
}

/// In the largest unit that divides it up to M, as `--memory` takes it:
/// `32M`, `1024M`, `6500k`, `6815745`.
impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.0 {
            b if b % MIB == 0 => write!(f, "{}M", b / MIB),
            b if b % KIB == 0 => write!(f, "{}k", b / KIB),
            b => write!(f, "{b}"),
        }
    }
}

/// Parse a size the way docker does: `64M`, `512k`, `1G`, `1.5g`, `1048576`
/// (bytes); `b`, `k`, `m`, `g` in either case, with an optional `B` or `iB`.
/// A fraction is taken as docker takes it (`1.5g` is 1610612736 bytes, the
/// part of a byte cut off).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &t[digits.len()..];
    let not_a_size = || format!("{text:?} is not a size like 64M, 512k, 1.5G or 1G");
    // Digits, with at most one point among them (no sign, no exponent).
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !is_digits(whole) || !is_digits(fraction) {
        return Err(not_a_size());
    }
    let multiplier: u64 = match unit
        .to_ascii_lowercase()
        .trim_end_matches("ib")
        .trim_end_matches('b')
    {
        "" => 1,
        "k" => KIB,
        "m" => MIB,
        "g" => GIB,
        _ => return Err(format!("{unit:?} in {text:?} is not a unit: use k, m or g")),
    };
    let too_large = || format!("{text:?} is too large");
    if digits.contains('.') {
        let number: f64 = digits.parse().map_err(|_| not_a_size())?;
        let bytes = number * multiplier as f64;
        if bytes >= u64::MAX as f64 {
            return Err(too_large());
        }
        return Ok(bytes as u64);
    }
    let number: u64 = digits.parse().map_err(|_| too_large())?;
    number.checked_mul(multiplier).ok_or_else(too_large)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        assert_eq!("0.2".parse(), Ok(CpuQuota::from_cpus(0.2)));
        assert_eq!("0.2".parse(), Ok(CpuQuota::percent(20)));
        assert_eq!("0.01".parse(), Ok(CpuQuota::percent(1)));
        for bad in ["0", "-1", "abc", "", "NaN", "inf", "0.001", "1000"] {
            assert!(bad.parse::<CpuQuota>().is_err(), "--cpus {bad}");
        }
        let cpus_error = |text: &str| text.parse::<CpuQuota>().unwrap_err();
        assert!(cpus_error("inf").contains("must be a finite number"));
        assert!(cpus_error("NaN").contains("must be a finite number"));
        assert!(cpus_error("-1").contains("more than 0"));
        assert_eq!(parse_pids_limit("20"), Ok(20));
        assert_eq!(parse_pids_limit("4194304"), Ok(4194304));
        for bad in ["0", "-3", "x", "", "4194305", "9223372036854775808"] {
            assert!(parse_pids_limit(bad).is_err(), "--pids-limit {bad}");
        }
        assert_eq!("64M".parse(), Ok(MemoryLimit::mib(64)));
        for bad in ["1M", "5M", "100", "lots", ""] {
            assert!(bad.parse::<MemoryLimit>().is_err(), "--memory {bad}");
        }
    }

    #[test]
    fn sizes_and_quotas() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        // Fractions, as docker takes them.
        assert_eq!(parse_size("1.5g"), Ok(1_610_612_736));
        assert_eq!(parse_size("0.5M"), Ok(512 << 10));
        assert_eq!(parse_size("1.5"), Ok(1));
        for bad in [
            "",
            "M",
            "12X",
            "-5M",
            ".5G",
            "1.G.5",
            "1..5G",
            "1e3M",
            "+5M",
            "99999999999999999999G",
            "99999999999999999999.5G",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            CpuQuota::from_cpus(0.2),
            CpuQuota {
                quota_us: 20000,
                period_us: 100000
            }
        );
        assert_eq!(CpuQuota::from_cpus(1.5).quota_us, 150000);
    }

    #[test]
    fn the_smallest_share_is_the_smallest_quota() {
        assert_eq!(CpuQuota::MIN_CPUS, 0.01);
        assert_eq!(CpuQuota::from_cpus(CpuQuota::MIN_CPUS).quota_us, 1000);
        assert_eq!("0.01".parse(), Ok(CpuQuota::from_cpus(0.01)));
        assert_eq!(
            "0.009".parse::<CpuQuota>(),
            Err(
                "0.009 CPUs is below 0.01 (1 ms per 100 ms period, the kernel's smallest quota)"
                    .into()
            )
        );
    }

    #[test]
    fn cpu_quotas_show_as_they_are_typed_and_parse_back() {
        for (typed, quota_us) in [
            ("0.2", 20000),
            ("0.5", 50000),
            ("0.333", 33300),
            ("1", 100000),
        ] {
            let cpu: CpuQuota = typed.parse().unwrap();
            assert_eq!(cpu.quota_us, quota_us, "--cpus {typed}");
            assert_eq!(cpu.period_us, 100000);
            assert_eq!(cpu.to_string(), typed);
            assert_eq!(cpu.to_string().parse(), Ok(cpu));
        }
        // Rounded to whole microseconds, once, on the way in.
        let cpu: CpuQuota = "0.0123456".parse().unwrap();
        assert_eq!(cpu.quota_us, 1235);
        assert_eq!(cpu.to_string(), "0.01235");
        assert_eq!(cpu.to_string().parse(), Ok(cpu));
    }

    #[test]
    fn memory_limits_show_as_typed_and_parse_back() {
        for (typed, shown, bytes) in [
            ("32M", "32M", 32 << 20),
            ("64m", "64M", 64 << 20),
            ("1G", "1024M", 1 << 30),
            ("6500k", "6500k", 6500 << 10),
            ("6815745", "6815745", 6815745),
        ] {
            let limit: MemoryLimit = typed.parse().unwrap();
            assert_eq!(limit.bytes(), bytes, "--memory {typed}");
            assert_eq!(limit.to_string(), shown, "--memory {typed}");
            assert_eq!(limit.to_string().parse(), Ok(limit));
        }
        assert_eq!(MemoryLimit::MIN.to_string(), "6M");
        assert_eq!(
            "1M".parse::<MemoryLimit>(),
            Err("1M is below 6M, less than a process needs to start".into())
        );
        assert_eq!(
            "1x".parse::<MemoryLimit>(),
            Err("\"x\" in \"1x\" is not a unit: use k, m or g".into())
        );
    }
}
