//! JSON <-> DynamoDB attribute values, so domain types are stored as native maps
//! (readable in the console, updatable field by field) through their serde form.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Number, Value};

pub type Item = HashMap<String, AttributeValue>;

pub fn to_attr(v: &Value) -> AttributeValue {
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_attr).collect()),
        Value::Object(o) => {
            AttributeValue::M(o.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect())
        }
    }
}

pub fn from_attr(a: &AttributeValue) -> Value {
    match a {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => n
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| n.parse::<u64>().map(Value::from))
            .ok()
            .or_else(|| {
                n.parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
            })
            .unwrap_or(Value::Null),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::L(l) => Value::Array(l.iter().map(from_attr).collect()),
        AttributeValue::M(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), from_attr(v))).collect())
        }
        AttributeValue::Ss(ss) => Value::Array(ss.iter().cloned().map(Value::String).collect()),
        _ => Value::Null,
    }
}

/// An item image in DynamoDB JSON (`{"S": "x"}`, `{"N": "1"}`, ..., as stream events carry
/// them) as the plain JSON `from_attr` would give.
pub fn from_dynamo_json(v: &Value) -> Value {
    let Some((tag, inner)) = v.as_object().and_then(|o| o.iter().next()) else {
        return Value::Null;
    };
    match (tag.as_str(), inner) {
        ("S", Value::String(s)) => Value::String(s.clone()),
        ("N", Value::String(n)) => from_attr(&AttributeValue::N(n.clone())),
        ("BOOL", Value::Bool(b)) => Value::Bool(*b),
        ("NULL", _) => Value::Null,
        ("L", Value::Array(l)) => Value::Array(l.iter().map(from_dynamo_json).collect()),
        ("M", Value::Object(m)) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), from_dynamo_json(v)))
                .collect(),
        ),
        ("SS", Value::Array(ss)) => Value::Array(ss.clone()),
        _ => Value::Null,
    }
}

/// An item image (a map of attribute names to DynamoDB JSON) as a plain JSON object.
pub fn image_to_json(image: &serde_json::Map<String, Value>) -> Value {
    Value::Object(
        image
            .iter()
            .map(|(k, v)| (k.clone(), from_dynamo_json(v)))
            .collect(),
    )
}

/// A value's serde form as item attributes (it must serialize to a JSON object).
pub fn to_item<T: Serialize>(value: &T) -> Result<Item, serde_json::Error> {
    match serde_json::to_value(value)? {
        Value::Object(o) => Ok(o
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k, to_attr(&v)))
            .collect()),
        other => Ok(HashMap::from([("value".to_owned(), to_attr(&other))])),
    }
}

/// Reads a value back from item attributes (key attributes are ignored by serde).
pub fn from_item<T: DeserializeOwned>(item: &Item) -> Result<T, serde_json::Error> {
    let map: Map<String, Value> = item
        .iter()
        .map(|(k, v)| (k.clone(), from_attr(v)))
        .collect();
    serde_json::from_value(Value::Object(map))
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A string attribute of an item.
pub fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|a| a.as_s().ok())
        .map(String::as_str)
}

/// A numeric attribute of an item.
pub fn get_n(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|a| a.as_n().ok())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_nested_json() {
        let v = json!({"a": "x", "n": 3, "f": 1.5, "b": true, "l": [1, "two", {"k": null}], "m": {"z": -7}});
        let back = from_attr(&to_attr(&v));
        assert_eq!(back, v);
    }

    #[test]
    fn to_item_drops_nulls_and_keeps_fields() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct T {
            a: String,
            b: Option<u32>,
        }
        let item = to_item(&T {
            a: "x".into(),
            b: None,
        })
        .unwrap();
        assert_eq!(item.len(), 1);
        let back: T = from_item(&item).unwrap();
        assert_eq!(
            back,
            T {
                a: "x".into(),
                b: None
            }
        );
    }
}
