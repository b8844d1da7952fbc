//! Field types of schema-defined objects, and the check of one value against its type.
//!
//! The Python conftool's validators coerce (`int("5")`, `str(x)`) or drop what they dislike
//! (a `list` field given a string becomes `[]`, invalid `cidr_list` entries are logged and
//! dropped). Here a value either has its field's type or is refused with a reason that names
//! the bad part; nothing is silently changed before it is written.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The type of one field, as spelled in `schema.yaml` (`string`, `int`, `bool`, `list`,
/// `dict`, `enum:a|b|c`, `cidr_list`, `any`).
///
/// ```
/// use conftool_model::schema::FieldType;
/// let t: FieldType = "enum:yes|no|inactive".parse().unwrap();
/// assert_eq!(t.to_string(), "enum:yes|no|inactive");
/// assert!(t.check(&serde_json::json!("no")).is_ok());
/// assert!(t.check(&serde_json::json!("maybe")).is_err());
/// assert!("float".parse::<FieldType>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldType {
    /// A JSON string.
    String,
    /// A JSON integer.
    Int,
    /// `true` or `false`.
    Bool,
    /// A JSON array of anything.
    List,
    /// A JSON object.
    Dict,
    /// One of the listed strings.
    Enum(Vec<String>),
    /// A list of IP networks or addresses (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.1`).
    CidrList,
    /// Any JSON value.
    Any,
}

/// A field type the schema names that is not one ([`FieldType`]'s `FromStr`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown field type {0:?}: expected string, int, bool, list, dict, enum:a|b|..., cidr_list \
     or any"
)]
pub struct UnknownFieldType(pub String);

impl FromStr for FieldType {
    type Err = UnknownFieldType;
    fn from_str(s: &str) -> Result<Self, UnknownFieldType> {
        Ok(match s {
            "string" => FieldType::String,
            "int" => FieldType::Int,
            "bool" => FieldType::Bool,
            "list" => FieldType::List,
            "dict" => FieldType::Dict,
            "cidr_list" => FieldType::CidrList,
            "any" => FieldType::Any,
            // As the Python tool's `choice()`: the values split on `|`, an empty one (from
            // `enum:` or `a||b`) being the empty string.
            _ => match s.strip_prefix("enum:") {
                Some(values) => FieldType::Enum(values.split('|').map(str::to_string).collect()),
                None => return Err(UnknownFieldType(s.to_string())),
            },
        })
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldType::String => f.write_str("string"),
            FieldType::Int => f.write_str("int"),
            FieldType::Bool => f.write_str("bool"),
            FieldType::List => f.write_str("list"),
            FieldType::Dict => f.write_str("dict"),
            FieldType::Enum(v) => write!(f, "enum:{}", v.join("|")),
            FieldType::CidrList => f.write_str("cidr_list"),
            FieldType::Any => f.write_str("any"),
        }
    }
}

impl<'de> Deserialize<'de> for FieldType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl FieldType {
    /// The type a default value has: how a command-line value of a `json_schema` type's
    /// field declared without a type is read (`port: {default: 3306}`: `set/port=3307`
    /// stores `3307`). `null` and non-integer numbers give `any` (the text, as a string).
    ///
    /// ```
    /// use conftool_model::schema::FieldType;
    /// use serde_json::json;
    /// assert_eq!(FieldType::of_default(&json!(3306)), FieldType::Int);
    /// assert_eq!(FieldType::of_default(&json!({})), FieldType::Dict);
    /// assert_eq!(FieldType::of_default(&json!(null)), FieldType::Any);
    /// ```
    pub fn of_default(default: &Value) -> FieldType {
        match default {
            Value::Bool(_) => FieldType::Bool,
            Value::Number(n) if n.is_i64() || n.is_u64() => FieldType::Int,
            Value::String(_) => FieldType::String,
            Value::Array(_) => FieldType::List,
            Value::Object(_) => FieldType::Dict,
            Value::Null | Value::Number(_) => FieldType::Any,
        }
    }

    /// Whether `v` is a value of this type; the error says why not.
    pub fn check(&self, v: &Value) -> Result<(), FieldError> {
        let ok = match self {
            FieldType::String => v.is_string(),
            FieldType::Int => v.is_i64() || v.is_u64(),
            FieldType::Bool => v.is_boolean(),
            FieldType::List => v.is_array(),
            FieldType::Dict => v.is_object(),
            FieldType::Any => true,
            FieldType::Enum(values) => {
                return match v.as_str() {
                    Some(s) if values.iter().any(|x| x == s) => Ok(()),
                    _ => Err(FieldError::NotOneOf {
                        value: short(v),
                        allowed: values.clone(),
                    }),
                }
            }
            FieldType::CidrList => {
                let Some(items) = v.as_array() else {
                    return Err(FieldError::NotNetworks { value: short(v) });
                };
                for item in items {
                    match item.as_str() {
                        Some(s) if is_network(s) => {}
                        _ => return Err(FieldError::NotNetwork { value: short(item) }),
                    }
                }
                true
            }
        };
        if ok {
            Ok(())
        } else {
            Err(FieldError::NotOfType {
                value: short(v),
                ty: self.clone(),
            })
        }
    }

    /// The value a command-line `field=TEXT` means for this type, as the Python tool reads
    /// it (`list`: comma-separated; `bool`: `true`/`false` in any case) and, where that tool
    /// would store a string the type refuses, as the type says (`int`: a decimal integer;
    /// `cidr_list`: comma-separated networks). `dict` cannot be given on the command line.
    pub fn from_cli(&self, text: &str) -> Result<Value, FieldError> {
        let v = match self {
            FieldType::String | FieldType::Enum(_) | FieldType::Any => Value::from(text),
            FieldType::Int => text
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| FieldError::NotInteger { text: text.into() })?,
            FieldType::Bool => match text.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(FieldError::NotBoolean { text: text.into() }),
            },
            FieldType::List | FieldType::CidrList => {
                Value::Array(text.split(',').map(Value::from).collect())
            }
            FieldType::Dict => return Err(FieldError::DictOnCommandLine),
        };
        self.check(&v)?;
        Ok(v)
    }
}

/// Why a value is not one of its field's type ([`FieldType::check`]) or a command-line
/// text cannot become one ([`FieldType::from_cli`]). Values are quoted as JSON, cut short.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// Not one of an `enum:` type's values.
    #[error("{value} is not one of {}", allowed.join(", "))]
    NotOneOf {
        /// The value, as JSON.
        value: String,
        /// The type's values.
        allowed: Vec<String>,
    },
    /// A `cidr_list` value that is not a list.
    #[error("{value} is not a list of networks")]
    NotNetworks {
        /// The value, as JSON.
        value: String,
    },
    /// An item of a `cidr_list` that is not an IP network.
    #[error("{value} is not an IP network")]
    NotNetwork {
        /// The item, as JSON.
        value: String,
    },
    /// A value of another JSON type.
    #[error("{value} is not of type {ty}")]
    NotOfType {
        /// The value, as JSON.
        value: String,
        /// The field's type.
        ty: FieldType,
    },
    /// Command-line text for an `int` field that is not a decimal integer.
    #[error("{text:?} is not an integer")]
    NotInteger {
        /// The text given.
        text: String,
    },
    /// Command-line text for a `bool` field other than `true`/`false`.
    #[error("{text:?}: booleans can only be 'true' or 'false'")]
    NotBoolean {
        /// The text given.
        text: String,
    },
    /// A `dict` field given on the command line.
    #[error("dictionaries are not supported on the command line")]
    DictOnCommandLine,
}

/// `10.0.0.0/8`, `192.0.2.1`, `2001:db8::/32`: an address, or one with a prefix length that
/// fits it (host bits may be set, as Python's `ip_network(strict=False)` allows).
pub fn is_network(s: &str) -> bool {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match len {
        None => true,
        Some(l) => {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_digit())
                && l.parse::<u32>().is_ok_and(|n| n <= max)
        }
    }
}

/// A value quoted for a message, cut short if it is long.
pub(crate) fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= 60 {
        return s;
    }
    let head: String = s.chars().take(50).collect();
    format!("{head}…")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_type_accepts_its_values_and_refuses_others() {
        let cases: &[(&str, Value, Value, &str)] = &[
            ("string", json!("x"), json!(1), "1 is not of type string"),
            ("int", json!(-3), json!("3"), r#""3" is not of type int"#),
            ("int", json!(3), json!(3.5), "3.5 is not of type int"),
            (
                "int",
                json!(u64::MAX),
                json!(null),
                "null is not of type int",
            ),
            (
                "bool",
                json!(false),
                json!("false"),
                r#""false" is not of type bool"#,
            ),
            (
                "list",
                json!([1, "a"]),
                json!("a,b"),
                r#""a,b" is not of type list"#,
            ),
            ("dict", json!({"a": 1}), json!([]), "[] is not of type dict"),
            (
                "enum:a|b",
                json!("b"),
                json!("c"),
                r#""c" is not one of a, b"#,
            ),
            ("enum:a|b", json!("a"), json!(1), "1 is not one of a, b"),
            (
                "cidr_list",
                json!(["10.0.0.0/8", "::1", "192.168.1.1/24"]),
                json!(["10.0.0.0/33"]),
                r#""10.0.0.0/33" is not an IP network"#,
            ),
            (
                "cidr_list",
                json!([]),
                json!("10.0.0.0/8"),
                r#""10.0.0.0/8" is not a list of networks"#,
            ),
            (
                "cidr_list",
                json!(["::/0"]),
                json!([8]),
                "8 is not an IP network",
            ),
        ];
        for (ty, good, bad, why) in cases {
            let t: FieldType = ty.parse().unwrap();
            assert_eq!(t.check(good), Ok(()), "{ty} {good}");
            assert_eq!(t.check(bad).unwrap_err().to_string(), *why, "{ty} {bad}");
            assert_eq!(t.to_string(), *ty);
        }
    }

    #[test]
    fn any_skips_the_type_check_and_is_the_type_of_a_null_or_float_default() {
        assert_eq!("any".parse::<FieldType>(), Ok(FieldType::Any));
        for v in [json!({"deep": [null]}), json!(null), json!(1.5), json!("x")] {
            assert_eq!(FieldType::Any.check(&v), Ok(()), "{v}");
        }
        let of = |v: Value| FieldType::of_default(&v);
        assert_eq!(of(json!(true)), FieldType::Bool);
        assert_eq!(of(json!(-1)), FieldType::Int);
        assert_eq!(of(json!(u64::MAX)), FieldType::Int);
        assert_eq!(of(json!("s")), FieldType::String);
        assert_eq!(of(json!([])), FieldType::List);
        assert_eq!(of(json!({})), FieldType::Dict);
        assert_eq!(of(json!(null)), FieldType::Any);
        assert_eq!(of(json!(0.5)), FieldType::Any);
    }

    #[test]
    fn a_long_value_is_cut_short_in_a_message() {
        let sixty = json!("x".repeat(58));
        assert_eq!(short(&sixty), format!("\"{}\"", "x".repeat(58)));
        let longer = json!("x".repeat(59));
        assert_eq!(short(&longer), format!("\"{}…", "x".repeat(49)));
    }

    #[test]
    fn a_bad_network_is_named() {
        let e = FieldType::CidrList
            .check(&json!(["10.0.0.0/8", "10.0.0.300"]))
            .unwrap_err();
        assert_eq!(e.to_string(), r#""10.0.0.300" is not an IP network"#);
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "fe80::/129",
            "host.example",
            "10.0.0.0/33",
        ] {
            assert!(!is_network(bad), "{bad}");
        }
        for good in ["10.0.0.0/32", "fe80::/128", "10.0.0.1"] {
            assert!(is_network(good), "{good}");
        }
    }

    #[test]
    fn types_parse_strictly() {
        for bad in ["Int", "float", "", "enum"] {
            assert_eq!(
                bad.parse::<FieldType>().map_err(|e| e.to_string()),
                Err(format!(
                    "unknown field type {bad:?}: expected string, int, bool, list, dict, \
                     enum:a|b|..., cidr_list or any"
                )),
            );
        }
    }

    #[test]
    fn command_line_values_like_the_python_tool() {
        let list: FieldType = "list".parse().unwrap();
        assert_eq!(list.from_cli("a,b").unwrap(), json!(["a", "b"]));
        // A bool set to false is false, not refused or true; in any case.
        for (text, v) in [
            ("TRUE", true),
            ("true", true),
            ("false", false),
            ("False", false),
        ] {
            assert_eq!(FieldType::Bool.from_cli(text), Ok(json!(v)), "{text}");
        }
        assert_eq!(
            FieldType::Bool.from_cli("yes").map_err(|e| e.to_string()),
            Err(r#""yes": booleans can only be 'true' or 'false'"#.to_string())
        );
        assert_eq!(FieldType::Int.from_cli(" 42 ").unwrap(), json!(42));
        assert_eq!(
            FieldType::Int.from_cli("4x").map_err(|e| e.to_string()),
            Err(r#""4x" is not an integer"#.to_string())
        );
        assert_eq!(
            FieldType::Dict.from_cli("{}").map_err(|e| e.to_string()),
            Err("dictionaries are not supported on the command line".to_string())
        );
        assert_eq!(FieldType::Any.from_cli("7").unwrap(), json!("7"));
        let e: FieldType = "enum:a||b".parse().unwrap();
        assert_eq!(
            e.from_cli("").unwrap(),
            json!(""),
            "an empty value is a value"
        );
        let e: FieldType = "enum:a|b".parse().unwrap();
        assert_eq!(
            e.from_cli("c").map_err(|e| e.to_string()),
            Err(r#""c" is not one of a, b"#.to_string())
        );
        assert_eq!(
            FieldType::CidrList.from_cli("10.0.0.0/8,::1").unwrap(),
            json!(["10.0.0.0/8", "::1"])
        );
        assert_eq!(
            FieldType::CidrList
                .from_cli("10.0.0.0/8,nope")
                .map_err(|e| e.to_string()),
            Err(r#""nope" is not an IP network"#.to_string())
        );
    }
}
