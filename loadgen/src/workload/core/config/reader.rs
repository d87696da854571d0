//! Typed reads of workload properties, each error naming its property.

use std::str::FromStr;

use super::{
    FieldLengthDistribution, InsertOrder, OperationProportions, RequestDistribution,
    ScanLengthDistribution,
};
use crate::error::{Error, Result};
use crate::workload::properties::Properties;

/// Typed access to properties, with errors that name the property.
pub(super) struct Reader<'a> {
    pub(super) properties: &'a Properties,
}

impl Reader<'_> {
    pub(super) fn invalid(&self, name: &str, detail: String) -> Error {
        Error::InvalidProperty {
            name: name.to_string(),
            value: self.properties.get(name).unwrap_or("").to_string(),
            detail,
        }
    }

    pub(super) fn text(&self, name: &str, default: &str) -> String {
        self.properties.get(name).unwrap_or(default).to_string()
    }

    // Values are trimmed before interpretation: Java keeps trailing blanks, which make
    // `Long.parseLong` throw and distribution names mismatch, an unkind way to fail.
    pub(super) fn number<T: FromStr>(&self, name: &str, default: T) -> Result<T> {
        match self.properties.get(name) {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse()
                .map_err(|_| self.invalid(name, "not a non-negative whole number".to_string())),
        }
    }

    pub(super) fn float(&self, name: &str, default: f64) -> Result<f64> {
        let Some(value) = self.properties.get(name) else {
            return Ok(default);
        };
        match value.trim().parse::<f64>() {
            Ok(parsed) if parsed.is_finite() && parsed >= 0.0 => Ok(parsed),
            _ => Err(self.invalid(name, "not a non-negative number".to_string())),
        }
    }

    pub(super) fn fraction(&self, name: &str, default: f64) -> Result<f64> {
        let value = self.float(name, default)?;
        if value > 1.0 {
            return Err(self.invalid(name, "must be between 0 and 1".to_string()));
        }
        Ok(value)
    }

    pub(super) fn boolean(&self, name: &str, default: bool) -> Result<bool> {
        match self
            .properties
            .get(name)
            .map(|value| value.trim().to_ascii_lowercase())
        {
            None => Ok(default),
            Some(value) if value == "true" => Ok(true),
            Some(value) if value == "false" => Ok(false),
            Some(_) => Err(self.invalid(name, "expected true or false".to_string())),
        }
    }

    pub(super) fn proportions(&self) -> Result<OperationProportions> {
        let proportions = OperationProportions {
            read: self.float("readproportion", 0.95)?,
            update: self.float("updateproportion", 0.05)?,
            insert: self.float("insertproportion", 0.0)?,
            scan: self.float("scanproportion", 0.0)?,
            read_modify_write: self.float("readmodifywriteproportion", 0.0)?,
        };
        let sum = proportions.sum();
        if sum <= 0.0 {
            return Err(Error::NoOperations { sum });
        }
        Ok(proportions)
    }

    fn choice<T: Copy>(
        &self,
        name: &str,
        default: &str,
        choices: &[(&str, T)],
        detail: &str,
    ) -> Result<T> {
        let value = self.text(name, default);
        choices
            .iter()
            .find(|(choice, _)| *choice == value.trim())
            .map(|(_, parsed)| *parsed)
            .ok_or_else(|| self.invalid(name, detail.to_string()))
    }

    pub(super) fn request_distribution(&self) -> Result<RequestDistribution> {
        use RequestDistribution::*;
        let choices = [
            ("uniform", Uniform),
            ("zipfian", Zipfian),
            ("latest", Latest),
            ("hotspot", Hotspot),
            ("sequential", Sequential),
            ("exponential", Exponential),
        ];
        let detail = "unknown request distribution (known: uniform, zipfian, latest, hotspot, sequential, exponential)";
        self.choice("requestdistribution", "uniform", &choices, detail)
    }

    pub(super) fn field_length_distribution(&self) -> Result<FieldLengthDistribution> {
        use FieldLengthDistribution::*;
        if self.text("fieldlengthdistribution", "constant").trim() == "histogram" {
            let detail = "the histogram field length distribution (fieldlengthhistogram file) is not supported yet; use constant, uniform or zipfian";
            return Err(self.invalid("fieldlengthdistribution", detail.to_string()));
        }
        let choices = [
            ("constant", Constant),
            ("uniform", Uniform),
            ("zipfian", Zipfian),
        ];
        let detail = "unknown field length distribution (known: constant, uniform, zipfian)";
        self.choice("fieldlengthdistribution", "constant", &choices, detail)
    }

    pub(super) fn scan_length_distribution(&self) -> Result<ScanLengthDistribution> {
        let choices = [
            ("uniform", ScanLengthDistribution::Uniform),
            ("zipfian", ScanLengthDistribution::Zipfian),
        ];
        let detail = "distribution not allowed for scan length (known: uniform, zipfian)";
        self.choice("scanlengthdistribution", "uniform", &choices, detail)
    }

    pub(super) fn insert_order(&self) -> Result<InsertOrder> {
        let choices = [
            ("hashed", InsertOrder::Hashed),
            ("ordered", InsertOrder::Ordered),
        ];
        self.choice(
            "insertorder",
            "hashed",
            &choices,
            "expected hashed or ordered",
        )
    }
}
