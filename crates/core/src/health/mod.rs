//! What Latch says about a home: the status (from latch.toml and SQLite only), the doctor's
//! checks and report, and what needs the person's attention.

pub mod attention;
pub mod doctor;
pub mod status;
