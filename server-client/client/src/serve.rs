//! The infer component's server (feature `serve`): one model on the Open Inference Protocol
//! v2, calling the notebook's `fn infer` for every request.
//!
//! The Rust types of `infer`'s input and output decide the tensors: numbers, `bool` and
//! `String` are elements; `Vec<T>` adds a dimension of any size (`-1`), `[T; N]` one of size
//! `N`. So `fn infer(model: &VarMap, features: Vec<[f32; 4]>) -> Vec<u32>` takes an FP32
//! input named `features` of shape `[-1, 4]` and answers a UINT32 output of shape `[-1]`, and
//! `GET /v2/models/{name}` says exactly that, so a generic OIP client can build requests.
//! An output may be a `Result<T, E>`: an `Err` answers 400 with its message.
//!
//! A polars `DataFrame` input (with the `polars` feature) takes named inputs instead: one 1-D
//! tensor per column, all of one length, as the [`Input::table`] declares them.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kiln_api::oip::binary::{self, Encoded};
use kiln_api::oip::{
    Data, InferRequest, InferResponse, Live, ModelMetadata, ModelReady, OipError, Ready, ResponseOutput, ServerMetadata, Tensor, TensorMetadata,
};

use crate::component::{ComponentError, Context, Spec};

pub use kiln_api::oip::Datatype;

#[cfg(feature = "polars")]
mod table;

/// A scalar a tensor holds.
pub trait Element: Sized {
    const DATATYPE: Datatype;
    /// The elements of checked data of this element's datatype.
    fn from_data(data: Data) -> Option<Vec<Self>>;
    fn into_data(values: Vec<Self>) -> Data;
}

macro_rules! int_elements {
    ($($t:ty => $d:ident),*) => {$(
        impl Element for $t {
            const DATATYPE: Datatype = Datatype::$d;
            fn from_data(data: Data) -> Option<Vec<Self>> {
                // The datatype's range was checked when the request was decoded.
                match data {
                    Data::Int(v) => Some(v.into_iter().map(|x| x as $t).collect()),
                    _ => None,
                }
            }
            fn into_data(values: Vec<Self>) -> Data {
                Data::Int(values.into_iter().map(|x| x as i64).collect())
            }
        }
    )*};
}
int_elements!(i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8, u16 => U16, u32 => U32);

/// Elements the checked data holds as they are.
macro_rules! direct_elements {
    ($($t:ty => $d:ident, $variant:ident);*) => {$(
        impl Element for $t {
            const DATATYPE: Datatype = Datatype::$d;
            fn from_data(data: Data) -> Option<Vec<Self>> {
                match data {
                    Data::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn into_data(values: Vec<Self>) -> Data {
                Data::$variant(values)
            }
        }
    )*};
}
direct_elements!(u64 => U64, UInt; f64 => F64, Float; bool => Bool, Bool; String => Bytes, Bytes);

impl Element for f32 {
    const DATATYPE: Datatype = Datatype::F32;
    fn from_data(data: Data) -> Option<Vec<Self>> {
        match data {
            Data::Float(v) => Some(v.into_iter().map(|x| x as f32).collect()),
            _ => None,
        }
    }
    fn into_data(values: Vec<Self>) -> Data {
        Data::Float(values.into_iter().map(f64::from).collect())
    }
}

/// A Rust value as a tensor: its element type and its dimensions.
pub trait Shaped: Sized {
    type Elem: Element;
    /// Declared dimensions, `-1` for any size (`Vec<[f32; 4]>` → `[-1, 4]`).
    fn dims() -> Vec<i64>;
    /// Builds a value of `shape` from row-major elements (the shape was checked first).
    fn build(elements: &mut std::vec::IntoIter<Self::Elem>, shape: &[u64]) -> Self;
    /// The actual shape; `None` when nested `Vec`s differ in length.
    fn shape_of(&self) -> Option<Vec<u64>>;
    fn flatten_into(self, out: &mut Vec<Self::Elem>);
}

macro_rules! scalar_shapes {
    ($($t:ty),*) => {$(
        impl Shaped for $t {
            type Elem = $t;
            fn dims() -> Vec<i64> {
                Vec::new()
            }
            fn build(elements: &mut std::vec::IntoIter<Self::Elem>, _shape: &[u64]) -> Self {
                elements.next().expect("the shape was checked against the element count")
            }
            fn shape_of(&self) -> Option<Vec<u64>> {
                Some(Vec::new())
            }
            fn flatten_into(self, out: &mut Vec<Self::Elem>) {
                out.push(self);
            }
        }
    )*};
}
scalar_shapes!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, bool, String);

impl<T: Shaped> Shaped for Vec<T> {
    type Elem = T::Elem;
    fn dims() -> Vec<i64> {
        std::iter::once(-1).chain(T::dims()).collect()
    }
    fn build(elements: &mut std::vec::IntoIter<Self::Elem>, shape: &[u64]) -> Self {
        (0..shape[0]).map(|_| T::build(elements, &shape[1..])).collect()
    }
    fn shape_of(&self) -> Option<Vec<u64>> {
        let inner = match self.first() {
            Some(first) => {
                let inner = first.shape_of()?;
                if self.iter().skip(1).any(|item| item.shape_of().as_ref() != Some(&inner)) {
                    return None;
                }
                inner
            }
            None => T::dims().iter().map(|&d| d.max(0) as u64).collect(),
        };
        Some(std::iter::once(self.len() as u64).chain(inner).collect())
    }
    fn flatten_into(self, out: &mut Vec<Self::Elem>) {
        for item in self {
            item.flatten_into(out);
        }
    }
}

impl<T: Shaped, const N: usize> Shaped for [T; N] {
    type Elem = T::Elem;
    fn dims() -> Vec<i64> {
        std::iter::once(N as i64).chain(T::dims()).collect()
    }
    fn build(elements: &mut std::vec::IntoIter<Self::Elem>, shape: &[u64]) -> Self {
        std::array::from_fn(|_| T::build(elements, &shape[1..]))
    }
    fn shape_of(&self) -> Option<Vec<u64>> {
        let inner = match self.first() {
            Some(first) => first.shape_of()?,
            None => T::dims().iter().map(|&d| d.max(0) as u64).collect(),
        };
        if self.iter().skip(1).any(|item| item.shape_of().as_ref() != Some(&inner)) {
            return None;
        }
        Some(std::iter::once(N as u64).chain(inner).collect())
    }
    fn flatten_into(self, out: &mut Vec<Self::Elem>) {
        for item in self {
            item.flatten_into(out);
        }
    }
}

/// What a request carries for `infer`'s last parameter: the parameter's name and, when it
/// is a table (a polars DataFrame), the columns it takes, each one input tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name: String,
    /// Empty for a tensor input; for a table, its columns in order (one 1-D input each).
    pub columns: Vec<Column>,
}

/// One column of a table input: a 1-D input tensor of this name and datatype.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub datatype: Datatype,
}

impl Input {
    /// One input tensor named `name`, its datatype and shape from the parameter's type.
    pub fn tensor(name: &str) -> Input {
        Input { name: name.to_owned(), columns: Vec::new() }
    }

    /// A table: each `(column, datatype)` is an input tensor of shape `[-1]` (or `[-1, 1]`),
    /// all of one length. The componentizer writes this from the notebook's
    /// `// kiln: input NAME { column: type, … }` line.
    pub fn table(name: &str, columns: &[(&str, Datatype)]) -> Input {
        Input { name: name.to_owned(), columns: columns.iter().map(|&(name, datatype)| Column { name: name.to_owned(), datatype }).collect() }
    }
}

impl From<&str> for Input {
    fn from(name: &str) -> Input {
        Input::tensor(name)
    }
}

/// The type of `infer`'s last parameter: built from the request's input tensors.
pub trait InferInput: Sized {
    /// The input tensors a request must carry, for the model metadata endpoint.
    fn metadata(input: &Input) -> Vec<TensorMetadata>;
    /// The value from a request's checked tensors (in request order, names distinct).
    fn from_tensors(tensors: Vec<Tensor>, input: &Input) -> Result<Self, OipError>;
}

/// A scalar is sent as shape `[1]` (or `[]`).
fn declared<T: Shaped>() -> Vec<i64> {
    let dims = T::dims();
    if dims.is_empty() { vec![1] } else { dims }
}

impl<T: Shaped> InferInput for T {
    fn metadata(input: &Input) -> Vec<TensorMetadata> {
        vec![TensorMetadata { name: input.name.clone(), datatype: T::Elem::DATATYPE, shape: declared::<T>() }]
    }

    fn from_tensors(mut tensors: Vec<Tensor>, input: &Input) -> Result<Self, OipError> {
        if tensors.len() != 1 || tensors[0].name != input.name {
            let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
            return Err(OipError::at("inputs", format!("are {names:?}; this model takes one input, `{}`", input.name)));
        }
        let tensor = tensors.remove(0);
        let at = "inputs[0]";
        let expected = T::Elem::DATATYPE;
        if tensor.datatype != expected {
            return Err(OipError::at(format!("{at}.datatype"), format!("is {}; this model takes {expected}", tensor.datatype)));
        }
        let dims = T::dims();
        let shape = if dims.is_empty() {
            if tensor.shape.iter().product::<u64>() != 1 || tensor.shape.len() > 1 {
                return Err(OipError::at(format!("{at}.shape"), format!("is {:?}; this model takes one value, shape [1]", tensor.shape)));
            }
            Vec::new()
        } else {
            tensor.check_shape(&dims, at)?;
            tensor.shape.clone()
        };
        let elements = T::Elem::from_data(tensor.data).ok_or_else(|| OipError::at(format!("{at}.data"), format!("is not {expected} data")))?;
        Ok(T::build(&mut elements.into_iter(), &shape))
    }
}

/// One call's result: the output tensor, or a refusal's message (a `Result`'s `Err`, a 400);
/// the outer error is a request the model cannot take.
pub type Answer = Result<Result<ResponseOutput, String>, OipError>;

/// What `infer` returns: one output tensor.
pub trait InferOutput {
    fn metadata(name: &str) -> TensorMetadata;
    /// The tensor, or the message of a refusal (a `Result`'s `Err`).
    fn into_output(self, name: &str) -> Answer;
}

impl<T: Shaped> InferOutput for T {
    fn metadata(name: &str) -> TensorMetadata {
        TensorMetadata { name: name.to_owned(), datatype: T::Elem::DATATYPE, shape: declared::<T>() }
    }

    fn into_output(self, name: &str) -> Answer {
        let mut shape = self.shape_of().ok_or_else(|| OipError::new(format!("the model's output `{name}` is ragged: its rows differ in length")))?;
        if shape.is_empty() {
            shape = vec![1];
        }
        let mut elements = Vec::new();
        self.flatten_into(&mut elements);
        Ok(Ok(ResponseOutput { name: name.to_owned(), shape, datatype: T::Elem::DATATYPE, parameters: None, data: Some(T::Elem::into_data(elements)) }))
    }
}

impl<T: InferOutput, E: std::fmt::Display> InferOutput for Result<T, E> {
    fn metadata(name: &str) -> TensorMetadata {
        T::metadata(name)
    }

    fn into_output(self, name: &str) -> Answer {
        match self {
            Ok(value) => value.into_output(name),
            Err(error) => Ok(Err(error.to_string())),
        }
    }
}

/// Compiles only when `I` can come from a request and `O` can answer one: the
/// componentizer's probe checks `fn infer`'s types with it, before anything is built.
pub fn check_io<I: InferInput, O: InferOutput>() {}

/// The name of the one output tensor.
pub const OUTPUT_NAME: &str = "output";

/// A loaded model: `infer` with its model values captured, and what it takes and gives.
pub struct Model {
    pub name: String,
    pub version: Option<String>,
    pub inputs: Vec<TensorMetadata>,
    pub output: TensorMetadata,
    call: Box<dyn Fn(Vec<Tensor>) -> Answer + Send + Sync>,
}

impl Model {
    /// `infer` (a closure over the model values) serving as `name`; `input` names its last
    /// parameter (the input tensor's name) or, for a table, the columns it takes.
    pub fn new<I, O, F>(name: &str, version: Option<String>, input: impl Into<Input>, infer: F) -> Model
    where
        I: InferInput + 'static,
        O: InferOutput + 'static,
        F: Fn(I) -> O + Send + Sync + 'static,
    {
        let input = input.into();
        Model {
            name: name.to_owned(),
            version,
            inputs: I::metadata(&input),
            output: O::metadata(OUTPUT_NAME),
            call: Box::new(move |tensors| {
                let value = I::from_tensors(tensors, &input)?;
                infer(value).into_output(OUTPUT_NAME)
            }),
        }
    }

    fn metadata(&self) -> ModelMetadata {
        ModelMetadata {
            name: self.name.clone(),
            versions: self.version.iter().cloned().collect(),
            platform: "kiln-rust".into(),
            inputs: self.inputs.clone(),
            outputs: vec![self.output.clone()],
        }
    }

    /// One request, start to end: checked, given to `infer`, answered. `header_length` is
    /// the `Inference-Header-Content-Length` header, when the body carries binary tensors
    /// after its JSON ([`kiln_api::oip::binary`]); the answer's outputs go as binary when the
    /// request asks for it.
    pub fn infer(&self, body: &[u8], header_length: Option<&[u8]>) -> Result<Encoded, (StatusCode, OipError)> {
        let bad = |e: OipError| (StatusCode::BAD_REQUEST, e);
        let (json, binary) = kiln_api::oip::binary::split(body, header_length).map_err(bad)?;
        let request: InferRequest = kiln_api::json::decode(json).map_err(|e| bad(OipError::at(e.field, e.message)))?;
        let tensors = request.tensors_with(binary).map_err(bad)?;
        if let Some(outputs) = &request.outputs
            && let Some((i, unknown)) = outputs.iter().enumerate().find(|(_, o)| o.name != OUTPUT_NAME)
        {
            return Err(bad(OipError::at(format!("outputs[{i}].name"), format!("`{}` is not an output of this model (it has `{OUTPUT_NAME}`)", unknown.name))));
        }
        let output = match std::panic::catch_unwind(AssertUnwindSafe(|| (self.call)(tensors))) {
            Ok(Ok(Ok(output))) => output,
            Ok(Ok(Err(refusal))) => return Err(bad(OipError::new(refusal))),
            Ok(Err(error)) if error.error.contains("ragged") => return Err((StatusCode::INTERNAL_SERVER_ERROR, error)),
            Ok(Err(error)) => return Err(bad(error)),
            Err(panic) => {
                let message = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                return Err((StatusCode::INTERNAL_SERVER_ERROR, OipError::new(format!("infer panicked: {message}"))));
            }
        };
        let response = InferResponse {
            model_name: self.name.clone(),
            model_version: self.version.clone(),
            id: request.id.clone(),
            parameters: None,
            outputs: vec![output],
        };
        response.encode(|name| request.wants_binary(name)).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, OipError::new(format!("encoding the answer: {e}"))))
    }
}

/// The largest request body served (`KILN_MAX_BODY_MB` to change it).
pub const DEFAULT_MAX_BODY: usize = 64 << 20;

struct Failure(StatusCode, OipError);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

type Shared = Arc<Model>;

fn find<'a>(model: &'a Model, name: &str, version: Option<&str>) -> Result<&'a Model, Failure> {
    if name != model.name {
        return Err(Failure(StatusCode::NOT_FOUND, OipError::new(format!("no model `{name}` here (this server serves `{}`)", model.name))));
    }
    if let Some(version) = version
        && model.version.as_deref() != Some(version)
    {
        let have = model.version.as_deref().unwrap_or("none");
        return Err(Failure(StatusCode::NOT_FOUND, OipError::new(format!("model `{name}` has no version `{version}` here (serving version {have})"))));
    }
    Ok(model)
}

/// The `/v2` routes for `model`; built apart from [`serve`] so tests can start it on port 0.
pub fn app(model: Model, max_body: usize) -> Router {
    async fn infer_at(model: &Model, name: &str, version: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Response {
        let header_length = headers.get(binary::HEADER_LENGTH).map(|v| v.as_bytes());
        match find(model, name, version) {
            Ok(model) => match model.infer(body, header_length) {
                Ok(encoded) => answer(encoded),
                Err((status, error)) => Failure(status, error).into_response(),
            },
            Err(failure) => failure.into_response(),
        }
    }
    Router::new()
        .route(
            "/v2",
            get(|| async {
                axum::Json(ServerMetadata {
                    name: "kiln".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    extensions: vec![kiln_api::oip::binary::EXTENSION.into()],
                })
            }),
        )
        .route("/v2/health/live", get(|| async { axum::Json(Live { live: true }) }))
        .route("/v2/health/ready", get(|| async { axum::Json(Ready { ready: true }) }))
        .route(
            "/v2/models/{name}",
            get(|State(m): State<Shared>, Path(name): Path<String>| async move { find(&m, &name, None).map(|m| axum::Json(m.metadata())) }),
        )
        .route(
            "/v2/models/{name}/versions/{version}",
            get(|State(m): State<Shared>, Path((name, version)): Path<(String, String)>| async move {
                find(&m, &name, Some(&version)).map(|m| axum::Json(m.metadata()))
            }),
        )
        .route(
            "/v2/models/{name}/ready",
            get(|State(m): State<Shared>, Path(name): Path<String>| async move {
                find(&m, &name, None).map(|m| axum::Json(ModelReady { name: m.name.clone(), ready: true }))
            }),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(|State(m): State<Shared>, Path((name, version)): Path<(String, String)>| async move {
                find(&m, &name, Some(&version)).map(|m| axum::Json(ModelReady { name: m.name.clone(), ready: true }))
            }),
        )
        .route(
            "/v2/models/{name}/infer",
            post(|State(m): State<Shared>, Path(name): Path<String>, headers: HeaderMap, body: Bytes| async move {
                infer_at(&m, &name, None, &headers, &body).await
            }),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(|State(m): State<Shared>, Path((name, version)): Path<(String, String)>, headers: HeaderMap, body: Bytes| async move {
                infer_at(&m, &name, Some(&version), &headers, &body).await
            }),
        )
        .fallback(|uri: axum::http::Uri| async move { Failure(StatusCode::NOT_FOUND, OipError::new(format!("no route {}", uri.path()))) })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(Arc::new(model))
}

/// An encoded answer: JSON, or JSON then binary outputs, with the header that splits them.
fn answer(encoded: Encoded) -> Response {
    use axum::http::header::CONTENT_TYPE;
    match encoded.header_length {
        None => ([(CONTENT_TYPE, "application/json")], encoded.body).into_response(),
        Some(length) => {
            let mut response = ([(CONTENT_TYPE, binary::CONTENT_TYPE)], encoded.body).into_response();
            response.headers_mut().insert(binary::HEADER_LENGTH, length.into());
            response
        }
    }
}

/// axum's own refusals (body too large, wrong method) as `{"error": …}` too.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response.headers().get(axum::http::header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if status.is_success() || is_json {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 64 << 10).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_owned();
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { text };
    Failure(status, OipError::new(message)).into_response()
}

/// Serves `model` on `listener` (TCP, or a Unix socket) until SIGTERM or Ctrl-C, then drains
/// in-flight requests.
pub async fn serve<L>(listener: L, router: Router) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let ctrl_c = tokio::signal::ctrl_c();
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        })
        .await
}

/// Binds a Unix socket at `path`, first removing a socket an instance that did not stop
/// cleanly left there (anything else at `path` is left alone, and the bind fails).
fn bind_unix(path: &std::path::Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        std::fs::remove_file(path)?;
    }
    tokio::net::UnixListener::bind(path)
}

/// The whole of an infer component's `main`: load the model values through `load` (which
/// returns `infer` with them captured), then serve on `KILN_LISTEN` (default `0.0.0.0:8080`;
/// `unix:PATH` for a Unix socket).
pub fn main<I, O, F>(spec: &'static Spec, input: impl Into<Input>, load: impl FnOnce(&mut Context) -> Result<F, Box<dyn std::error::Error>>) -> ExitCode
where
    I: InferInput + 'static,
    O: InferOutput + 'static,
    F: Fn(I) -> O + Send + Sync + 'static,
{
    let fail = |message: String, code: u8| {
        eprintln!("kiln: infer step of `{}` failed: {message}", spec.handle);
        ExitCode::from(code)
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "The infer step of `{}`, generated by `kiln componentize` from {}: serves the model on the Open Inference Protocol v2.",
            spec.handle, spec.notebook
        );
        println!(
            "\nEnvironment: KILN_SERVER, KILN_TOKEN, KILN_MODEL (default {}@latest), KILN_LISTEN (default 0.0.0.0:8080, or unix:PATH), KILN_MAX_BODY_MB.",
            spec.handle
        );
        return ExitCode::SUCCESS;
    }
    let mut ctx = match crate::component::start(spec, args) {
        Ok(ctx) => ctx,
        Err(error) => return fail(error.to_string(), if matches!(error, ComponentError::Usage(_)) { 2 } else { 1 }),
    };
    let infer = match load(&mut ctx) {
        Ok(infer) => infer,
        Err(error) => return fail(format!("loading the model: {error}"), 1),
    };
    let (model_ref, version) = match ctx.loaded_model() {
        Some((name, version)) => (format!("{name}@{version}"), Some(version.to_string())),
        None => (spec.handle.to_owned(), None),
    };
    let model = Model::new(spec.handle, version.clone(), input, infer);
    let max_body = std::env::var("KILN_MAX_BODY_MB").ok().and_then(|m| m.parse::<usize>().ok()).map_or(DEFAULT_MAX_BODY, |mb| mb << 20);
    let listen = std::env::var("KILN_LISTEN").unwrap_or_else(|_| "0.0.0.0:8080".into());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(format!("starting the runtime: {error}"), 1),
    };
    let announce = |address: &str| {
        let line = serde_json::json!({ "role": "infer", "listening": address, "model": model_ref, "model_version": version });
        println!("{line}");
        eprintln!("kiln: serving `{}` ({model_ref}) on {address}", spec.handle);
    };
    let result = runtime.block_on(async {
        let router = app(model, max_body);
        match listen.strip_prefix(kiln_api::oip::UNIX_SOCKET_PREFIX) {
            Some(path) => {
                let listener = bind_unix(std::path::Path::new(path)).map_err(|e| format!("listening on {listen}: {e}"))?;
                announce(&listen);
                serve(listener, router).await.map_err(|e| e.to_string())
            }
            None => {
                let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|e| format!("listening on {listen}: {e}"))?;
                let address: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
                announce(&format!("http://{address}"));
                serve(listener, router).await.map_err(|e| e.to_string())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(message, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        let weights = vec![0.5f32, -1.0, 2.0, 0.0];
        Model::new("iris", Some("3".into()), "features", move |rows: Vec<[f32; 4]>| -> Vec<f32> {
            rows.iter().map(|row| row.iter().zip(&weights).map(|(x, w)| x * w).sum()).collect()
        })
    }

    fn call(model: &Model, body: &str) -> String {
        match model.infer(body.as_bytes(), None) {
            Ok(encoded) => String::from_utf8(encoded.body).unwrap(),
            Err((status, error)) => format!("{} {}", status.as_u16(), error.error),
        }
    }

    #[test]
    fn metadata_comes_from_the_types() {
        expect_test::expect![[r#"{"name":"iris","versions":["3"],"platform":"kiln-rust","inputs":[{"name":"features","datatype":"FP32","shape":[-1,4]}],"outputs":[{"name":"output","datatype":"FP32","shape":[-1]}]}"#]]
            .assert_eq(&serde_json::to_string(&model().metadata()).unwrap());
        let scalar = Model::new("m", None, "x", |x: f64| -> Result<Vec<Vec<u8>>, String> { Ok(vec![vec![x as u8]]) });
        expect_test::expect![[r#"{"name":"m","versions":[],"platform":"kiln-rust","inputs":[{"name":"x","datatype":"FP64","shape":[1]}],"outputs":[{"name":"output","datatype":"UINT8","shape":[-1,-1]}]}"#]]
            .assert_eq(&serde_json::to_string(&scalar.metadata()).unwrap());
    }

    #[test]
    fn requests_and_refusals() {
        let m = model();
        let cases = [
            r#"{"id":"7","inputs":[{"name":"features","shape":[2,4],"datatype":"FP32","data":[[1,1,1,1],[2,0,0,0]]}]}"#,
            r#"{"inputs":[{"name":"features","shape":[1,3],"datatype":"FP32","data":[1,1,1]}]}"#,
            r#"{"inputs":[{"name":"features","shape":[4],"datatype":"FP32","data":[1,1,1,1]}]}"#,
            r#"{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP64","data":[1,1,1,1]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,1,1,1]}]}"#,
            r#"{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[1,1,1,1]}],"outputs":[{"name":"probs"}]}"#,
            r#"{"inputs":[{"name":"features","shape":[0,4],"datatype":"FP32","data":[]}]}"#,
            r#"{"inputs":[{"name":"features","shape":"1,4","datatype":"FP32","data":[1,1,1,1]}]}"#,
            r#"not json"#,
        ];
        let out: Vec<String> = cases.iter().map(|c| call(&m, c)).collect();
        expect_test::expect![[r#"
            {"model_name":"iris","model_version":"3","id":"7","outputs":[{"name":"output","shape":[2],"datatype":"FP32","data":[1.5,1.0]}]}
            400 inputs[0].shape: is [1, 3]; this model takes [-1, 4] (-1: any size)
            400 inputs[0].shape: is [4]; this model takes [-1, 4] (-1: any size)
            400 inputs[0].datatype: is FP64; this model takes FP32
            400 inputs: are ["x"]; this model takes one input, `features`
            400 outputs[0].name: `probs` is not an output of this model (it has `output`)
            {"model_name":"iris","model_version":"3","outputs":[{"name":"output","shape":[0],"datatype":"FP32","data":[]}]}
            400 inputs[0].shape: invalid type: string "1,4", expected a sequence at line 1 column 43
            400 body: malformed JSON: expected ident at line 1 column 2"#]]
        .assert_eq(&out.join("\n"));
    }

    /// tritonclient's default request: FP32 rows as bytes after the JSON header, and every
    /// output asked for as bytes; and the same request with the size wrong.
    #[test]
    fn binary_tensors_in_and_out() {
        let m = model();
        let rows: Vec<u8> = [1f32, 1.0, 1.0, 1.0, 2.0, 0.0, 0.0, 0.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let header = |size: usize, parameters: &str| {
            format!(r#"{{"inputs":[{{"name":"features","shape":[2,4],"datatype":"FP32","parameters":{{"binary_data_size":{size}}}}}]{parameters}}}"#)
        };
        let send = |json: String, tail: &[u8]| {
            let length = json.len().to_string();
            m.infer(&[json.as_bytes(), tail].concat(), Some(length.as_bytes()))
        };
        let encoded = send(header(32, r#","parameters":{"binary_data_output":true}"#), &rows).unwrap();
        let length = encoded.header_length.expect("a binary answer");
        expect_test::expect![[
            r#"{"model_name":"iris","model_version":"3","outputs":[{"name":"output","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}"#
        ]]
        .assert_eq(std::str::from_utf8(&encoded.body[..length]).unwrap());
        let answer: Vec<f32> = encoded.body[length..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(answer, [1.5, 1.0]);

        let json = send(header(32, ""), &rows).unwrap();
        assert_eq!((json.header_length, String::from_utf8(json.body).unwrap().contains(r#""data":[1.5,1.0]"#)), (None, true));
        let (status, error) = send(header(28, ""), &rows[..28]).unwrap_err();
        assert_eq!(
            (status.as_u16(), error.error.as_str()),
            (400, "inputs[0].parameters.binary_data_size: is 28 but shape [2, 4] of FP32 needs 32 bytes (8 × 4)")
        );
        let (_, error) = m.infer(header(32, "").as_bytes(), Some(b"500")).unwrap_err();
        assert_eq!(error.error, "Inference-Header-Content-Length: is 500 but the body has only 101 bytes");
    }

    #[test]
    fn refusals_panics_and_ragged_outputs() {
        let refusing = Model::new("m", None, "x", |x: i64| if x < 0 { Err(format!("{x} is negative")) } else { Ok(x) });
        assert_eq!(call(&refusing, r#"{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[-2]}]}"#), "400 -2 is negative");
        assert_eq!(
            call(&refusing, r#"{"inputs":[{"name":"x","shape":[],"datatype":"INT64","data":[2]}]}"#),
            r#"{"model_name":"m","outputs":[{"name":"output","shape":[1],"datatype":"INT64","data":[2]}]}"#
        );
        let panicking = Model::new("m", None, "x", |x: Vec<u32>| x[10]);
        assert!(
            call(&panicking, r#"{"inputs":[{"name":"x","shape":[1],"datatype":"UINT32","data":[1]}]}"#).starts_with("500 infer panicked: index out of bounds")
        );
        let ragged = Model::new("m", None, "x", |n: u8| (0..n).map(|i| vec![0u8; i as usize]).collect::<Vec<_>>());
        assert_eq!(
            call(&ragged, r#"{"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[3]}]}"#),
            "500 the model's output `output` is ragged: its rows differ in length"
        );
    }
}
