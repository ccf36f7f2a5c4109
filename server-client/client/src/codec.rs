//! How a value crosses a component boundary: one [`Codec`] per kind of value, chosen by the
//! componentizer from the value's type and written out in the generated code
//! (`ctx.put("xs", kiln::codec::Json, &xs)`), so a reader sees how each value travels.
//!
//! - [`Json`]: any serde value (`Vec<f32>`, structs deriving `Serialize` + `Deserialize`).
//! - `Parquet` (feature `parquet`): polars `DataFrame`s.
//! - `Safetensors` (feature `candle`): candle `Tensor`s and `VarMap`s.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::Error;

#[cfg(feature = "parquet")]
pub use crate::parquet::Parquet;
#[cfg(feature = "candle")]
pub use crate::safetensors::Safetensors;

/// Turns a `T` into artifact bytes and back.
pub trait Codec<T> {
    /// `json`, `parquet`, `safetensors`: recorded in the manifests next to each value.
    const NAME: &'static str;
    const MEDIA_TYPE: &'static str;
    /// The artifact's file extension.
    const EXTENSION: &'static str;

    fn encode(&self, value: &T) -> Result<Vec<u8>, Error>;
    fn decode(&self, bytes: Vec<u8>) -> Result<T, Error>;
}

/// Compiles only when `codec` can carry a `T`: the componentizer's probe calls it for every
/// boundary value, so a value without a codec is reported at its cell and line before any
/// component is built.
pub fn check<T, C: Codec<T>>(_value: &T, _codec: C) {}

/// Any serde value, as JSON.
#[derive(Debug, Clone, Copy)]
pub struct Json;

impl<T: Serialize + DeserializeOwned> Codec<T> for Json {
    const NAME: &'static str = "json";
    const MEDIA_TYPE: &'static str = "application/json";
    const EXTENSION: &'static str = "json";

    fn encode(&self, value: &T) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(value).map_err(|e| Error::Codec { what: "writing JSON".into(), message: e.to_string() })
    }

    fn decode(&self, bytes: Vec<u8>) -> Result<T, Error> {
        serde_json::from_slice(&bytes).map_err(|e| Error::Codec { what: "reading JSON".into(), message: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_its_errors() {
        let bytes = Json.encode(&vec![vec![1.5f32, 2.0], vec![3.0, 4.0]]).unwrap();
        let back: Vec<Vec<f32>> = Json.decode(bytes).unwrap();
        assert_eq!(back, vec![vec![1.5, 2.0], vec![3.0, 4.0]]);
        let error = Codec::<Vec<u32>>::decode(&Json, b"[1, -2]".to_vec()).unwrap_err();
        assert_eq!(error.to_string(), "reading JSON: invalid value: integer `-2`, expected u32 at line 1 column 6");
    }
}
