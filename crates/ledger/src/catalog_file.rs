//! The catalog as a file (`catalogs/*.toml`): parsed and checked here, from text, so the
//! server (`--catalog FILE`) and the tests load the same rules. An error names the line
//! and the field, and a catalog that loads is one the ledger can run: ids unique, every
//! model a plan names exists, amounts in range.

use serde::Deserialize;
use toml::Spanned;

use crate::{Bucket, Cadence, Catalog, Cents, Credits, CustomPricing, Model, Pack, Plan, Unit};

/// The catalog of api.md, as shipped in `catalogs/default.toml`.
pub const DEFAULT_CATALOG_TOML: &str = include_str!("../../../catalogs/default.toml");

/// Why a catalog file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// Not TOML, or a field of the wrong type, missing or unknown (toml's message names
    /// the line, the column and the field).
    #[error("{0}")]
    Syntax(String),
    #[error("line {line}: {field}: {problem}")]
    Invalid {
        line: usize,
        field: String,
        problem: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    unit: Option<UnitFile>,
    #[serde(default)]
    signup: Option<SignupFile>,
    #[serde(default)]
    purchases: Option<PurchasesFile>,
    /// Absent: the platform sells no custom amounts (all zero in the catalog).
    #[serde(default)]
    custom: Option<CustomFile>,
    plans: Vec<PlanFile>,
    #[serde(default)]
    packs: Vec<PackFile>,
    models: Vec<ModelFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitFile {
    kind: Spanned<String>,
    #[serde(default)]
    tokens_per_credit: Option<u64>,
    #[serde(default)]
    requests_per_credit: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignupFile {
    grant: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurchasesFile {
    bucket: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomFile {
    credits_per_dollar: Spanned<i64>,
    min_cents: i64,
    max_cents: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    id: Spanned<String>,
    subscription: i64,
    daily: i64,
    price_cents: i64,
    cadence: String,
    #[serde(default)]
    models: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PackFile {
    id: Spanned<String>,
    credits: i64,
    price_cents: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    id: Spanned<String>,
    #[serde(default)]
    input_rate: Option<i64>,
    #[serde(default)]
    output_rate: Option<i64>,
    #[serde(default)]
    cached_input_rate: Option<i64>,
    #[serde(default)]
    request_credits: Option<i64>,
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map(|before| before.matches('\n').count() + 1)
        .unwrap_or(1)
}

struct Check<'a> {
    text: &'a str,
}

impl Check<'_> {
    fn err<T>(
        &self,
        at: usize,
        field: impl Into<String>,
        problem: impl Into<String>,
    ) -> Result<T, CatalogError> {
        Err(CatalogError::Invalid {
            line: line_of(self.text, at),
            field: field.into(),
            problem: problem.into(),
        })
    }

    fn credits(&self, at: usize, field: &str, whole: i64) -> Result<Credits, CatalogError> {
        if whole < 0 {
            return self.err(at, field, "must not be negative");
        }
        whole
            .checked_mul(crate::MICROS_PER_CREDIT)
            .map(Credits::from_micros)
            .map_or_else(|| self.err(at, field, "too large"), Ok)
    }
}

impl Catalog {
    /// Parses and checks a catalog file's text.
    pub fn from_toml(text: &str) -> Result<Catalog, CatalogError> {
        let file: File = toml::from_str(text).map_err(|e| CatalogError::Syntax(e.to_string()))?;
        let c = Check { text };
        let mut models = Vec::new();
        for (i, m) in file.models.iter().enumerate() {
            let at = m.id.span().start;
            let field = |f: &str| format!("models[{i}] (`{}`).{f}", m.id.get_ref());
            if m.id.get_ref().is_empty() || models.iter().any(|x: &Model| &x.id == m.id.get_ref()) {
                return c.err(at, format!("models[{i}].id"), "empty or used twice");
            }
            let request_price = match m.request_credits {
                Some(r) => {
                    if m.input_rate.is_some() || m.output_rate.is_some() {
                        return c.err(
                            at,
                            field("request_credits"),
                            "a model is priced per request or per token, not both",
                        );
                    }
                    Some(c.credits(at, &field("request_credits"), r)?)
                }
                None => None,
            };
            let rate = |v: Option<i64>, f: &str| -> Result<i64, CatalogError> {
                match v {
                    Some(r) if r < 0 => c.err(at, field(f), "must not be negative"),
                    Some(r) => Ok(r),
                    None if request_price.is_some() || f == "cached_input_rate" => Ok(0),
                    None => c.err(
                        at,
                        field(f),
                        "missing (µcr per token), or give request_credits",
                    ),
                }
            };
            models.push(Model {
                id: m.id.get_ref().clone(),
                input_rate: rate(m.input_rate, "input_rate")?,
                output_rate: rate(m.output_rate, "output_rate")?,
                cached_input_rate: rate(m.cached_input_rate, "cached_input_rate")?,
                request_price,
            });
        }
        if models.is_empty() {
            return c.err(text.len(), "models", "at least one model is needed");
        }
        let mut plans = Vec::new();
        for (i, p) in file.plans.iter().enumerate() {
            let at = p.id.span().start;
            let field = |f: &str| format!("plans[{i}] (`{}`).{f}", p.id.get_ref());
            if p.id.get_ref().is_empty() || plans.iter().any(|x: &Plan| &x.id == p.id.get_ref()) {
                return c.err(at, format!("plans[{i}].id"), "empty or used twice");
            }
            let cadence = match p.cadence.as_str() {
                "days30" => Cadence::Days30,
                "monthly" => Cadence::Monthly,
                "yearly" => Cadence::Yearly,
                other => {
                    return c.err(
                        at,
                        field("cadence"),
                        format!("`{other}`: expected days30, monthly or yearly"),
                    )
                }
            };
            if p.price_cents < 0 {
                return c.err(at, field("price_cents"), "must not be negative");
            }
            if let Some(names) = &p.models {
                for n in names {
                    if !models.iter().any(|m| &m.id == n) {
                        return c.err(at, field("models"), format!("unknown model `{n}`"));
                    }
                }
            }
            plans.push(Plan {
                id: p.id.get_ref().clone(),
                subscription: c.credits(at, &field("subscription"), p.subscription)?,
                daily: c.credits(at, &field("daily"), p.daily)?,
                price_cents: Cents(p.price_cents),
                cadence,
                models: p.models.clone(),
            });
        }
        if plans.is_empty() {
            return c.err(text.len(), "plans", "at least one plan is needed");
        }
        let mut packs = Vec::new();
        for (i, p) in file.packs.iter().enumerate() {
            let at = p.id.span().start;
            let field = |f: &str| format!("packs[{i}] (`{}`).{f}", p.id.get_ref());
            if p.id.get_ref().is_empty() || packs.iter().any(|x: &Pack| &x.id == p.id.get_ref()) {
                return c.err(at, format!("packs[{i}].id"), "empty or used twice");
            }
            if p.credits <= 0 || p.price_cents <= 0 {
                return c.err(
                    at,
                    field("credits"),
                    "a pack sells a positive number of credits for a positive price",
                );
            }
            packs.push(Pack {
                id: p.id.get_ref().clone(),
                credits: c.credits(at, &field("credits"), p.credits)?,
                price_cents: Cents(p.price_cents),
            });
        }
        let custom = match &file.custom {
            None => CustomPricing {
                credits_per_dollar: 0,
                min_cents: Cents(0),
                max_cents: Cents(0),
            },
            Some(cu) => {
                if *cu.credits_per_dollar.get_ref() <= 0 {
                    return c.err(
                        cu.credits_per_dollar.span().start,
                        "custom.credits_per_dollar",
                        "must be positive",
                    );
                }
                if cu.min_cents <= 0 || cu.min_cents > *cu.max_cents.get_ref() {
                    return c.err(
                        cu.max_cents.span().start,
                        "custom.min_cents",
                        "must be positive and at most max_cents",
                    );
                }
                let custom = CustomPricing {
                    credits_per_dollar: *cu.credits_per_dollar.get_ref(),
                    min_cents: Cents(cu.min_cents),
                    max_cents: Cents(*cu.max_cents.get_ref()),
                };
                // The largest custom amount must be representable.
                custom.credits_for(custom.max_cents).map_or_else(
                    |_| c.err(cu.max_cents.span().start, "custom.max_cents", "too large"),
                    Ok,
                )?;
                custom
            }
        };
        let unit = match &file.unit {
            None => Unit::Credits,
            Some(u) => match (u.kind.get_ref().as_str(), u.tokens_per_credit, u.requests_per_credit) {
                ("credits", None, None) => Unit::Credits,
                ("tokens", Some(n), None) if n > 0 => Unit::Tokens { per_credit: n },
                ("requests", None, Some(n)) if n > 0 => Unit::Requests { per_credit: n },
                (kind, ..) => {
                    return c.err(
                        u.kind.span().start,
                        "unit",
                        format!("kind `{kind}`: \"credits\"; \"tokens\" with tokens_per_credit; or \"requests\" with requests_per_credit (a positive number)"),
                    )
                }
            },
        };
        let signup_grant = match &file.signup {
            Some(s) => c.credits(s.grant.span().start, "signup.grant", *s.grant.get_ref())?,
            None => Credits::ZERO,
        };
        let purchase_bucket = match &file.purchases {
            None => Bucket::Purchased,
            Some(p) => match p.bucket.get_ref().as_str() {
                "purchased" => Bucket::Purchased,
                "bonus" => Bucket::Bonus,
                other => {
                    return c.err(
                        p.bucket.span().start,
                        "purchases.bucket",
                        format!("`{other}`: expected purchased or bonus"),
                    )
                }
            },
        };
        Ok(Catalog {
            name: file.name.unwrap_or_else(|| "creditbar".into()),
            plans,
            packs,
            custom,
            models,
            signup_grant,
            purchase_bucket,
            unit,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_default_catalog_file_loads() {
        let c = Catalog::from_toml(DEFAULT_CATALOG_TOML).unwrap();
        assert_eq!(c.plans.len(), 4);
        assert_eq!(c.plan("pro").unwrap().price_cents, Cents(2000));
    }

    #[test]
    fn errors_name_the_line_and_the_field() {
        let bad = DEFAULT_CATALOG_TOML.replace("cadence = \"monthly\"", "cadence = \"weekly\"");
        let e = Catalog::from_toml(&bad).unwrap_err().to_string();
        assert!(e.starts_with("line "), "{e}");
        assert!(e.contains("plans[1] (`pro`).cadence"), "{e}");
        assert!(e.contains("weekly"), "{e}");
        let line: usize = e["line ".len()..]
            .split(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let pro_line = DEFAULT_CATALOG_TOML
            .lines()
            .position(|l| l == "id = \"pro\"")
            .unwrap()
            + 1;
        assert_eq!(line, pro_line);
        let unknown = format!("{DEFAULT_CATALOG_TOML}\nsurprise = 1\n");
        let e = Catalog::from_toml(&unknown).unwrap_err().to_string();
        assert!(e.contains("surprise") && e.contains("line"), "{e}");
        let unknown_model = DEFAULT_CATALOG_TOML.replace(
            "cadence = \"days30\"",
            "cadence = \"days30\"\nmodels = [\"gpt\"]",
        );
        let e = Catalog::from_toml(&unknown_model).unwrap_err().to_string();
        assert!(e.contains("unknown model `gpt`"), "{e}");
    }
}
