//! The exception tree: one class per core [`ErrorKind`], all under `tasker.TaskerError`.
//! Argument errors are also `ValueError`, and "not found" is also `LookupError`, so
//! code that catches the built-in classes keeps working.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use tasker::{Error, ErrorKind};

/// The exception classes, created once when the module is imported.
pub(crate) struct Classes {
    pub base: Py<PyType>,
    pub argument: Py<PyType>,
    pub not_found: Py<PyType>,
    pub transition: Py<PyType>,
    pub exists: Py<PyType>,
    pub config: Py<PyType>,
    pub storage: Py<PyType>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

fn make(
    py: Python<'_>,
    name: &str,
    doc: &str,
    bases: Vec<Bound<'_, PyType>>,
) -> PyResult<Py<PyType>> {
    let dict = PyDict::new(py);
    dict.set_item("__module__", "tasker")?;
    dict.set_item("__doc__", doc)?;
    let bases = PyTuple::new(py, bases)?;
    let ty = py.get_type::<PyType>().call1((name, bases, dict))?;
    Ok(ty.cast_into::<PyType>()?.unbind())
}

pub(crate) fn classes(py: Python<'_>) -> PyResult<&Classes> {
    CLASSES.get_or_try_init(py, || {
        let exc = py.get_type::<pyo3::exceptions::PyException>();
        let base = make(
            py,
            "TaskerError",
            "Base class of every error tasker raises.",
            vec![exc],
        )?;
        let b = base.bind(py).clone();
        let sub = |name: &str, doc: &str, extra: Option<Bound<'_, PyType>>| {
            let mut bases = vec![b.clone()];
            bases.extend(extra);
            make(py, name, doc, bases)
        };
        Ok(Classes {
            argument: sub(
                "ArgumentError",
                "A bad argument (wrong range, empty name, unknown status, ...). Also a ValueError.",
                Some(py.get_type::<pyo3::exceptions::PyValueError>()),
            )?,
            not_found: sub(
                "NotFoundError",
                "The run, subtask or task named does not exist. Also a LookupError.",
                Some(py.get_type::<pyo3::exceptions::PyLookupError>()),
            )?,
            transition: sub(
                "InvalidTransitionError",
                "The state machine refuses this change of status (e.g. completing a finished run).",
                None,
            )?,
            exists: sub(
                "AlreadyExistsError",
                "The thing to create already exists (e.g. a subtask number in use).",
                None,
            )?,
            config: sub(
                "ConfigError",
                "The configuration (URL, .tasker.yml, TASKER_* variables) is invalid.",
                None,
            )?,
            storage: sub(
                "StorageError",
                "The database could not be reached or refused a statement.",
                None,
            )?,
            base,
        })
    })
}

/// A core error on its way to Python (style: a binding-side error type with `From`).
#[derive(Debug)]
pub(crate) struct CoreError(pub Error);

impl From<Error> for CoreError {
    fn from(e: Error) -> CoreError {
        CoreError(e)
    }
}

impl From<CoreError> for PyErr {
    fn from(CoreError(e): CoreError) -> PyErr {
        Python::attach(|py| {
            let Ok(c) = classes(py) else {
                return pyo3::exceptions::PyRuntimeError::new_err(e.to_string());
            };
            let ty = match e.kind() {
                ErrorKind::InvalidArgument => &c.argument,
                ErrorKind::NotFound => &c.not_found,
                ErrorKind::InvalidTransition => &c.transition,
                ErrorKind::AlreadyExists => &c.exists,
                ErrorKind::Config => &c.config,
                ErrorKind::Storage => &c.storage,
            };
            PyErr::from_type(ty.bind(py).clone(), e.to_string())
        })
    }
}

/// An argument error raised by the binding itself (a message that names the value).
pub(crate) fn argument_error(message: String) -> PyErr {
    Python::attach(|py| match classes(py) {
        Ok(c) => PyErr::from_type(c.argument.bind(py).clone(), message),
        Err(e) => e,
    })
}

/// Shorthand for results of core calls.
pub(crate) trait OrRaise<T> {
    fn or_raise(self) -> PyResult<T>;
}

impl<T> OrRaise<T> for tasker::Result<T> {
    fn or_raise(self) -> PyResult<T> {
        self.map_err(|e| CoreError(e).into())
    }
}

pub(crate) fn add_to_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let c = classes(py)?;
    for (name, ty) in [
        ("TaskerError", &c.base),
        ("ArgumentError", &c.argument),
        ("NotFoundError", &c.not_found),
        ("InvalidTransitionError", &c.transition),
        ("AlreadyExistsError", &c.exists),
        ("ConfigError", &c.config),
        ("StorageError", &c.storage),
    ] {
        m.add(name, ty.clone_ref(py))?;
    }
    Ok(())
}
