//! The `Line` object in the server's address space (SPEC section 12): its
//! variables, its methods with their argument declarations, and the node
//! manager that answers method calls through the [`Gateway`].
//!
//! Owns: node ids (`Line`, `Line.<Name>` in namespace
//! `urn:linemark:{line_id}`), OPC UA values to and from [`call::Arg`] and
//! [`Reply`]. Must not: decide anything about a call (that is `call` and
//! the gateway) or touch the journal.

use async_trait::async_trait;
use opcua::server::address_space::{AddressSpace, MethodBuilder, ObjectBuilder, VariableBuilder};
use opcua::server::diagnostics::NamespaceMetadata;
use opcua::server::node_manager::memory::{
    InMemoryNodeManagerImpl, InMemoryNodeManagerImplBuilder,
};
use opcua::server::node_manager::{MethodCall, RequestContext, ServerContext};
use opcua::sync::RwLock;
use opcua::types::{
    Argument, DataTypeId, LocalizedText, NodeId, ObjectId, ObjectTypeId, QualifiedName, StatusCode,
    UAString, Variant,
};

use crate::plc::call::{self, Arg, ArgError, ArgType, Extra, Method};
use crate::plc::gateway::{Gateway, LineVars, Reply};

/// The `Line` object's variables: browse name and data type.
pub const VARIABLES: [(&str, DataTypeId); 6] = [
    ("LineId", DataTypeId::String),
    ("IdsLeft", DataTypeId::UInt64),
    ("PrinterState", DataTypeId::String),
    ("QueueLength", DataTypeId::UInt32),
    ("SyncState", DataTypeId::String),
    ("LastUnit", DataTypeId::String),
];

/// The node id `Line.<name>` (or `Line` itself for an empty name).
pub fn node_id(ns: u16, name: &str) -> NodeId {
    if name.is_empty() {
        NodeId::new(ns, "Line")
    } else {
        NodeId::new(ns, format!("Line.{name}"))
    }
}

/// Builds [`LineNodes`] with its namespace registered.
pub struct LineNodesBuilder {
    pub namespace_uri: String,
    pub gateway: Gateway,
}

impl InMemoryNodeManagerImplBuilder for LineNodesBuilder {
    type Impl = LineNodes;

    fn build(self, context: ServerContext, address_space: &mut AddressSpace) -> LineNodes {
        let ns = context
            .type_tree
            .write()
            .namespaces_mut()
            .add_namespace(&self.namespace_uri);
        address_space.add_namespace(&self.namespace_uri, ns);
        let vars = self.gateway.vars();
        populate(address_space, ns, &self.gateway.config().line_id, &vars);
        LineNodes {
            ns,
            namespace_uri: self.namespace_uri,
            gateway: self.gateway,
        }
    }
}

/// The node manager of the `Line` object.
pub struct LineNodes {
    ns: u16,
    namespace_uri: String,
    gateway: Gateway,
}

impl LineNodes {
    /// The variables' values as they are now, with their node ids.
    pub fn values(&self, vars: &LineVars) -> Vec<(NodeId, Variant)> {
        vec![
            (node_id(self.ns, "IdsLeft"), Variant::UInt64(vars.ids_left)),
            (
                node_id(self.ns, "PrinterState"),
                Variant::from(vars.printer.as_str()),
            ),
            (node_id(self.ns, "QueueLength"), Variant::UInt32(vars.queue)),
            (
                node_id(self.ns, "SyncState"),
                Variant::from(vars.sync.as_str()),
            ),
            (
                node_id(self.ns, "LastUnit"),
                Variant::from(vars.last_unit.as_str()),
            ),
        ]
    }

    async fn call_one(&self, call: &mut MethodCall) {
        let Some(method) = self.method_of(call.method_id()) else {
            call.set_status(StatusCode::BadMethodInvalid);
            return;
        };
        let args = match args(method, call.arguments()) {
            Ok(a) => a,
            Err(status) => {
                call.set_status(status);
                return;
            }
        };
        let read = match call::read(method, &args) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(method = method.name(), error = %e, "OPC UA call refused");
                call.set_status(match e {
                    ArgError::Missing { .. } => StatusCode::BadArgumentsMissing,
                    ArgError::TooMany { .. } => StatusCode::BadTooManyArguments,
                    ArgError::WrongType { .. } => StatusCode::BadTypeMismatch,
                });
                return;
            }
        };
        let reply = self.gateway.run(&read.station, read.request).await;
        if let Some(code) = reply.code {
            tracing::info!(station = %read.station, method = method.name(), code = code.as_str(), message = %reply.message, "PLC call refused");
        }
        call.set_outputs(outputs(method, &reply));
        call.set_status(StatusCode::Good);
    }

    fn method_of(&self, id: &NodeId) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|m| node_id(self.ns, m.name()) == *id)
    }
}

#[async_trait]
impl InMemoryNodeManagerImpl for LineNodes {
    async fn init(&self, _address_space: &mut AddressSpace, _context: ServerContext) {}

    fn name(&self) -> &str {
        "linemark"
    }

    fn namespaces(&self) -> Vec<NamespaceMetadata> {
        vec![NamespaceMetadata {
            is_namespace_subset: Some(false),
            namespace_uri: self.namespace_uri.clone(),
            namespace_index: self.ns,
            static_node_id_types: Some(vec![opcua::types::IdType::String]),
            ..Default::default()
        }]
    }

    async fn call(
        &self,
        _context: &RequestContext,
        _address_space: &RwLock<AddressSpace>,
        methods_to_call: &mut [&mut &mut MethodCall],
    ) -> Result<(), StatusCode> {
        for call in methods_to_call.iter_mut() {
            self.call_one(call).await;
        }
        Ok(())
    }
}

/// The method's arguments as strings and string arrays; a null string or
/// an empty variant is empty. Anything else is `BadTypeMismatch`.
fn args(method: Method, given: &[Variant]) -> Result<Vec<Arg>, StatusCode> {
    let specs = method.inputs();
    given
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let want = specs.get(i).map_or(ArgType::Str, |s| s.ty);
            match (want, v) {
                (ArgType::Str, Variant::String(s)) => Ok(Arg::Str(text(s))),
                (ArgType::Str, Variant::Empty) => Ok(Arg::Str(String::new())),
                (ArgType::StrArray, Variant::Empty) => Ok(Arg::StrArray(Vec::new())),
                (ArgType::StrArray, Variant::Array(a)) => a
                    .values
                    .iter()
                    .map(|e| match e {
                        Variant::String(s) => Ok(text(s)),
                        Variant::Empty => Ok(String::new()),
                        _ => Err(StatusCode::BadTypeMismatch),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Arg::StrArray),
                // Let `call::read` name the argument that does not fit.
                (ArgType::Str, Variant::Array(_)) => Ok(Arg::StrArray(Vec::new())),
                (ArgType::StrArray, Variant::String(_)) => Ok(Arg::Str(String::new())),
                _ => Err(StatusCode::BadTypeMismatch),
            }
        })
        .collect()
}

fn text(s: &UAString) -> String {
    s.value().clone().unwrap_or_default()
}

/// `Code`, `Message` and the method's extra outputs.
fn outputs(method: Method, reply: &Reply) -> Vec<Variant> {
    let mut out = vec![
        Variant::from(reply.code_str()),
        Variant::from(reply.message.as_str()),
    ];
    match method.extra() {
        Extra::Unit => {
            out.push(Variant::from(reply.field("unit").unwrap_or_default()));
            out.push(Variant::from(reply.field("uri").unwrap_or_default()));
        }
        Extra::LabelJob => {
            let job = reply.field("label").and_then(|j| j.parse().ok());
            out.push(Variant::UInt64(job.unwrap_or(0)));
        }
        Extra::None => {}
    }
    out
}

fn argument(name: &str, ty: DataTypeId, array: bool) -> Argument {
    Argument {
        name: UAString::from(name),
        data_type: ty.into(),
        value_rank: if array { 1 } else { -1 },
        array_dimensions: array.then(|| vec![0]),
        description: LocalizedText::null(),
    }
}

/// The output declarations of a method.
fn output_args(method: Method) -> Vec<Argument> {
    let mut out = vec![
        argument("Code", DataTypeId::String, false),
        argument("Message", DataTypeId::String, false),
    ];
    match method.extra() {
        Extra::Unit => {
            out.push(argument("Unit", DataTypeId::String, false));
            out.push(argument("Uri", DataTypeId::String, false));
        }
        Extra::LabelJob => out.push(argument("LabelJob", DataTypeId::UInt64, false)),
        Extra::None => {}
    }
    out
}

/// Adds `Line`, its variables and its methods under Objects.
fn populate(space: &mut AddressSpace, ns: u16, line_id: &str, vars: &LineVars) {
    let line = node_id(ns, "");
    ObjectBuilder::new(&line, QualifiedName::new(ns, "Line"), "Line")
        .description(format!("linemark line {line_id}"))
        .organized_by(ObjectId::ObjectsFolder)
        .has_type_definition(ObjectTypeId::BaseObjectType)
        .insert(space);
    let initial = |name: &str| -> Variant {
        match name {
            "LineId" => Variant::from(line_id),
            "IdsLeft" => Variant::UInt64(vars.ids_left),
            "PrinterState" => Variant::from(vars.printer.as_str()),
            "QueueLength" => Variant::UInt32(vars.queue),
            "SyncState" => Variant::from(vars.sync.as_str()),
            _ => Variant::from(vars.last_unit.as_str()),
        }
    };
    for (name, ty) in VARIABLES {
        VariableBuilder::new(&node_id(ns, name), QualifiedName::new(ns, name), name)
            .data_type(ty)
            .value(initial(name))
            .component_of(line.clone())
            .has_type_definition(opcua::types::VariableTypeId::BaseDataVariableType)
            .insert(space);
    }
    for m in Method::ALL {
        let id = node_id(ns, m.name());
        let inputs: Vec<Argument> = m
            .inputs()
            .iter()
            .map(|a| argument(a.name, DataTypeId::String, a.ty == ArgType::StrArray))
            .collect();
        MethodBuilder::new(&id, QualifiedName::new(ns, m.name()), m.name())
            .component_of(line.clone())
            .executable(true)
            .user_executable(true)
            .input_args(
                space,
                &node_id(ns, &format!("{}.InputArguments", m.name())),
                &inputs,
            )
            .output_args(
                space,
                &node_id(ns, &format!("{}.OutputArguments", m.name())),
                &output_args(m),
            )
            .insert(space);
    }
}
