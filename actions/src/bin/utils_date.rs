//! `utils_date`: the catalog's `/whisk.system/utils/date` ("Current date and time").
//!
//! Params: none. Result: `{"date": "<now, ISO 8601 in UTC with milliseconds>"}`, e.g.
//! `{"date": "2016-03-22T00:59:55.961Z"}`, as `date.js` (a `Date` serialised to JSON).
//! Logs: `It is now <now as Date.prototype.toString prints it in UTC>`, e.g.
//! `It is now Tue Mar 22 2016 00:59:55 GMT+0000 (Coordinated Universal Time)`.

use std::time::{SystemTime, UNIX_EPOCH};

use ow_action::serde_json::json;

/// A UTC calendar time to the millisecond.
struct Utc {
    year: i64,
    month: u32,
    day: u32,
    weekday: usize,
    hour: u64,
    minute: u64,
    second: u64,
    millis: u128,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

impl Utc {
    /// The calendar time `millis` ms after 1970-01-01T00:00:00Z.
    fn from_epoch_millis(millis: u128) -> Self {
        let seconds = (millis / 1000) as u64;
        let days = (seconds / 86_400) as i64;
        let of_day = seconds % 86_400;
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month,
            day,
            // 1970-01-01 was a Thursday.
            weekday: (days % 7) as usize,
            hour: of_day / 3600,
            minute: of_day % 3600 / 60,
            second: of_day % 60,
            millis: millis % 1000,
        }
    }

    /// `Date.prototype.toISOString`.
    fn iso(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.millis
        )
    }

    /// `Date.prototype.toString` in the UTC time zone.
    fn to_js_string(&self) -> String {
        format!(
            "{} {} {:02} {:04} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
            WEEKDAYS[self.weekday],
            MONTHS[(self.month - 1) as usize],
            self.day,
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }
}

/// Year, month (1-12) and day (1-31) of the `days`-th day after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for the proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn main() {
    ow_action::run(|_params| {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| format!("The clock is before 1970: {e}"))?;
        let now = Utc::from_epoch_millis(since_epoch.as_millis());
        ow_action::log!("It is now {}", now.to_js_string());
        Ok::<_, String>(json!({"date": now.iso()}))
    });
}
