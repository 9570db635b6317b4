//! Calendar spans as policies state them: "7 days", "3 months", "5 years",
//! "10 business days".
//!
//! A span is always positive; "3 months" is calendar arithmetic (2024-11-30
//! plus 3 months is 2025-02-28), never 90 days. Business days skip Saturday
//! and Sunday; public holidays are not modelled (no policy file states them).

use std::fmt;
use std::str::FromStr;

use jiff::ToSpan;
use jiff::civil::{Date, Weekday};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Days,
    BusinessDays,
    Weeks,
    Months,
    Years,
}

/// A positive calendar span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    count: u32,
    unit: Unit,
}

/// The largest count accepted; anything longer is certainly a typo.
const MAX_COUNT: u32 = 10_000;

impl Span {
    pub fn new(count: u32, unit: Unit) -> Result<Span, String> {
        if count == 0 {
            return Err("a span must be longer than zero".to_owned());
        }
        if count > MAX_COUNT {
            return Err(format!("a span of more than {MAX_COUNT} units is not accepted"));
        }
        Ok(Span { count, unit })
    }

    pub fn count(self) -> u32 {
        self.count
    }

    pub fn unit(self) -> Unit {
        self.unit
    }

    /// `date` plus this span, clamping to the end of shorter months.
    /// Errors only past the year 9999.
    pub fn after(self, date: Date) -> Result<Date, String> {
        let n = i64::from(self.count);
        let out = match self.unit {
            Unit::Days => date.checked_add(n.days()),
            Unit::Weeks => date.checked_add(n.weeks()),
            Unit::Months => date.checked_add(n.months()),
            Unit::Years => date.checked_add(n.years()),
            Unit::BusinessDays => return add_business_days(date, self.count),
        };
        out.map_err(|_| format!("{date} plus {self} is past the last supported date"))
    }

    /// `date` minus this span.
    pub fn before(self, date: Date) -> Result<Date, String> {
        let n = -i64::from(self.count);
        let out = match self.unit {
            Unit::Days => date.checked_add(n.days()),
            Unit::Weeks => date.checked_add(n.weeks()),
            Unit::Months => date.checked_add(n.months()),
            Unit::Years => date.checked_add(n.years()),
            Unit::BusinessDays => {
                let mut d = date;
                let mut left = self.count;
                while left > 0 {
                    d = d.yesterday().map_err(|e| e.to_string())?;
                    if !is_weekend(d) {
                        left -= 1;
                    }
                }
                return Ok(d);
            }
        };
        out.map_err(|_| format!("{date} minus {self} is before the first supported date"))
    }
}

fn is_weekend(d: Date) -> bool {
    matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

fn add_business_days(date: Date, count: u32) -> Result<Date, String> {
    let mut d = date;
    let mut left = count;
    while left > 0 {
        d = d.tomorrow().map_err(|_| format!("{date} plus {count} business days is past the last supported date"))?;
        if !is_weekend(d) {
            left -= 1;
        }
    }
    Ok(d)
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (one, many) = match self.unit {
            Unit::Days => ("day", "days"),
            Unit::BusinessDays => ("business day", "business days"),
            Unit::Weeks => ("week", "weeks"),
            Unit::Months => ("month", "months"),
            Unit::Years => ("year", "years"),
        };
        write!(f, "{} {}", self.count, if self.count == 1 { one } else { many })
    }
}

impl FromStr for Span {
    type Err = String;

    fn from_str(s: &str) -> Result<Span, String> {
        let expected = || {
            format!(
                "{s:?} is not a span (write a whole number and a unit: \"7 days\", \"10 business days\", \"2 weeks\", \"6 months\", \"5 years\")"
            )
        };
        let trimmed = s.trim();
        let (number, unit) = trimmed.split_once(' ').ok_or_else(expected)?;
        let unit = match unit.trim() {
            "day" | "days" => Unit::Days,
            "business day" | "business days" => Unit::BusinessDays,
            "week" | "weeks" => Unit::Weeks,
            "month" | "months" => Unit::Months,
            "year" | "years" => Unit::Years,
            _ => return Err(expected()),
        };
        if number.starts_with('-') && number[1..].chars().all(|c| c.is_ascii_digit()) && number.len() > 1 {
            return Err(format!("{s:?} is negative: a span must be longer than zero"));
        }
        if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
            return Err(expected());
        }
        let count: u32 = match number.parse() {
            Ok(n) => n,
            Err(_) => return Err(format!("{s:?}: a span of more than {MAX_COUNT} units is not accepted")),
        };
        Span::new(count, unit).map_err(|e| format!("{s:?}: {e}"))
    }
}

#[cfg(test)]
mod tests;
