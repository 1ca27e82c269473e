//! Office hours and away periods: whether the therapist is available at
//! a given instant, answered offline, DST-correct (chrono-tz).
