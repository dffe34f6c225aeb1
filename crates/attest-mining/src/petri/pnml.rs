//! PNML (ISO/IEC 15909-2) reader for place/transition nets, including ProM's
//! extensions: `$invisible$` transitions and `<finalmarkings>`.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event as XmlEvent};

use super::{Arc, Node, PetriNet, Place, Transition};
use crate::input::excerpt;

/// PNML files are small models; anything larger is refused before parsing.
const MAX_PNML_BYTES: u64 = 64 << 20;
/// Bounds the element tree built from the file.
const MAX_ELEMENTS: usize = 2_000_000;
const MAX_DEPTH: usize = 64;
/// Bounds arc weights and marking counts so token arithmetic cannot overflow.
const MAX_TOKENS: u64 = 1_000_000;

/// A failure to read a PNML file.
#[derive(Debug, thiserror::Error)]
pub enum PnmlError {
    /// The input could not be read.
    #[error("cannot read PNML: {0}")]
    Io(#[from] std::io::Error),
    /// The input is larger than any sensible model.
    #[error("the PNML input is larger than {limit_bytes} bytes")]
    TooLarge {
        /// The limit in force.
        limit_bytes: u64,
    },
    /// The XML is not well-formed or exceeds the structural limits.
    #[error("line {line}: malformed PNML: {message}")]
    Xml {
        /// 1-based line.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// There is no `<net>` element.
    #[error("no <net> element: this is not a PNML document")]
    NoNet,
    /// An element lacks a required XML attribute.
    #[error("line {line}: a <{element}> has no {attribute:?} attribute")]
    MissingAttribute {
        /// 1-based line.
        line: u64,
        /// The element.
        element: String,
        /// The XML attribute.
        attribute: &'static str,
    },
    /// Two nodes share an id.
    #[error("line {line}: the id {id:?} is used twice")]
    DuplicateId {
        /// 1-based line.
        line: u64,
        /// The id.
        id: String,
    },
    /// An arc refers to an id that is not a place or transition, or joins two of a kind.
    #[error("line {line}: arc {arc:?} must join a place and a transition, but joins {from:?} and {to:?}")]
    BadArc {
        /// 1-based line.
        line: u64,
        /// The arc id.
        arc: String,
        /// Its source id.
        from: String,
        /// Its target id.
        to: String,
    },
    /// A number (weight or token count) does not parse or is out of range.
    #[error("line {line}: {context} must be a whole number from 0 to {MAX_TOKENS}, not {value:?}")]
    BadNumber {
        /// 1-based line.
        line: u64,
        /// What the number is.
        context: &'static str,
        /// The offending text (shortened).
        value: String,
    },
    /// Inhibitor, reset and other special arcs change the firing rule.
    #[error("line {line}: arc {arc:?} has type {kind:?}; only normal arcs are supported")]
    UnsupportedArcType {
        /// 1-based line.
        line: u64,
        /// The arc id.
        arc: String,
        /// The arc type.
        kind: String,
    },
    /// The final marking names an unknown place.
    #[error("line {line}: the final marking refers to the unknown place {id:?}")]
    UnknownPlace {
        /// 1-based line.
        line: u64,
        /// The id.
        id: String,
    },
}

/// Reads a PNML file.
pub fn read_pnml_file(path: &Path) -> Result<PetriNet, PnmlError> {
    read_pnml(File::open(path)?)
}

/// Reads the first net of a PNML document.
///
/// Places and transitions are collected from every page of the net. A
/// transition is invisible when it has no name or a ProM `toolspecific` with
/// `activity="$invisible$"`. Without `<finalmarkings>`, the final marking puts one
/// token on each place that has no outgoing arc, as pm4py does.
pub fn read_pnml<R: Read>(input: R) -> Result<PetriNet, PnmlError> {
    let mut bytes = Vec::new();
    input.take(MAX_PNML_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_PNML_BYTES {
        return Err(PnmlError::TooLarge { limit_bytes: MAX_PNML_BYTES });
    }
    let root = parse_tree(&bytes)?;
    let net = root.descendants().find(|element| element.name == "net").ok_or(PnmlError::NoNet)?;
    build_net(net, &bytes)
}

/// A minimal element tree; PNML models are small, so a tree keeps the reader simple.
#[derive(Default)]
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
    offset: u64,
}

impl Element {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    /// The text of `<name><text>…</text></name>`-style children.
    fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).and_then(|child| child.child("text")).map(|text| text.text.trim())
    }

    fn descendants(&self) -> impl Iterator<Item = &Element> {
        let mut stack = vec![self];
        std::iter::from_fn(move || {
            let element = stack.pop()?;
            stack.extend(element.children.iter().rev());
            Some(element)
        })
    }
}

fn line_at(bytes: &[u8], offset: u64) -> u64 {
    let end = (offset as usize).min(bytes.len());
    bytes[..end].iter().filter(|&&b| b == b'\n').count() as u64 + 1
}

fn parse_tree(bytes: &[u8]) -> Result<Element, PnmlError> {
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().trim_text(true);
    let mut latin1 = false;
    let mut stack: Vec<Element> = vec![Element::default()];
    let mut element_count = 0usize;
    let xml_error = |reader: &Reader<&[u8]>, message: String| PnmlError::Xml {
        line: line_at(bytes, reader.buffer_position()),
        message,
    };
    loop {
        let event = reader.read_event().map_err(|error| xml_error(&reader, error.to_string()))?;
        match event {
            XmlEvent::Decl(declaration) => {
                if let Some(Ok(encoding)) = declaration.encoding() {
                    let encoding = String::from_utf8_lossy(&encoding).to_ascii_lowercase();
                    latin1 = matches!(encoding.as_str(), "iso-8859-1" | "latin1" | "latin-1");
                }
            }
            XmlEvent::Start(start) | XmlEvent::Empty(start) if stack.len() > MAX_DEPTH => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                return Err(xml_error(&reader, format!("<{name}> is nested deeper than {MAX_DEPTH} levels")));
            }
            XmlEvent::Start(start) => {
                element_count += 1;
                let element = new_element(&start, latin1, reader.buffer_position())
                    .map_err(|message| xml_error(&reader, message))?;
                stack.push(element);
            }
            XmlEvent::Empty(start) => {
                element_count += 1;
                let element = new_element(&start, latin1, reader.buffer_position())
                    .map_err(|message| xml_error(&reader, message))?;
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(element);
                }
            }
            XmlEvent::End(_) => {
                if stack.len() > 1
                    && let Some(element) = stack.pop()
                    && let Some(parent) = stack.last_mut()
                {
                    parent.children.push(element);
                }
            }
            XmlEvent::Text(text) => {
                let text = decode(&text, latin1)
                    .and_then(|raw| {
                        quick_xml::escape::unescape(&raw)
                            .map(|text| text.into_owned())
                            .map_err(|error| error.to_string())
                    })
                    .map_err(|message| xml_error(&reader, message))?;
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&text);
                }
            }
            XmlEvent::CData(data) => {
                let text = decode(&data, latin1).map_err(|message| xml_error(&reader, message))?;
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&text);
                }
            }
            XmlEvent::Eof => break,
            _ => {}
        }
        if element_count > MAX_ELEMENTS {
            return Err(xml_error(&reader, format!("more than {MAX_ELEMENTS} elements")));
        }
    }
    if stack.len() > 1 {
        return Err(xml_error(&reader, "the document ends inside an element: the file is truncated".to_owned()));
    }
    stack.pop().ok_or(PnmlError::NoNet)
}

fn decode(raw: &[u8], latin1: bool) -> Result<String, String> {
    if latin1 {
        Ok(raw.iter().map(|&byte| char::from(byte)).collect())
    } else {
        String::from_utf8(raw.to_vec()).map_err(|_| "text is not valid UTF-8".to_owned())
    }
}

fn new_element(start: &BytesStart<'_>, latin1: bool, offset: u64) -> Result<Element, String> {
    let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|error| error.to_string())?;
        let key = String::from_utf8_lossy(attribute.key.local_name().as_ref()).into_owned();
        let raw = decode(&attribute.value, latin1)?;
        let value = quick_xml::escape::unescape(&raw).map_err(|error| error.to_string())?.into_owned();
        attributes.push((key, value));
    }
    Ok(Element { name, attributes, offset, ..Element::default() })
}

fn parse_count(text: &str, context: &'static str, line: u64) -> Result<u64, PnmlError> {
    text.trim().parse::<u64>().ok().filter(|&value| value <= MAX_TOKENS).ok_or_else(|| PnmlError::BadNumber {
        line,
        context,
        value: excerpt(text),
    })
}

fn required<'e>(element: &'e Element, attribute: &'static str, bytes: &[u8]) -> Result<&'e str, PnmlError> {
    element.attribute(attribute).ok_or_else(|| PnmlError::MissingAttribute {
        line: line_at(bytes, element.offset),
        element: element.name.clone(),
        attribute,
    })
}

fn build_net(net_element: &Element, bytes: &[u8]) -> Result<PetriNet, PnmlError> {
    let mut net = PetriNet::default();
    let mut nodes: HashMap<String, Node> = HashMap::new();
    // Places and transitions may sit on the net or on (nested) pages; the
    // final markings are ProM's extension and hold place references only.
    let mut in_net: Vec<&Element> = Vec::new();
    let mut stack: Vec<&Element> = vec![net_element];
    while let Some(element) = stack.pop() {
        for child in element.children.iter().rev() {
            match child.name.as_str() {
                "page" => stack.push(child),
                "place" | "transition" | "arc" => in_net.push(child),
                _ => {}
            }
        }
    }
    in_net.sort_by_key(|element| element.offset);

    for element in in_net.iter().filter(|element| element.name == "place") {
        let id = required(element, "id", bytes)?;
        let line = line_at(bytes, element.offset);
        let tokens = match element.child_text("initialMarking") {
            Some(text) => parse_count(text, "an initial marking", line)?,
            None => 0,
        };
        let index = net.places.len();
        if nodes.insert(id.to_owned(), Node::Place(index)).is_some() {
            return Err(PnmlError::DuplicateId { line, id: id.to_owned() });
        }
        let name = element.child_text("name").filter(|name| !name.is_empty()).unwrap_or(id);
        net.places.push(Place { id: id.to_owned(), name: name.to_owned() });
        net.initial_marking.push(tokens);
        net.final_marking.push(0);
    }

    for element in in_net.iter().filter(|element| element.name == "transition") {
        let id = required(element, "id", bytes)?;
        let name = element.child_text("name").filter(|name| !name.is_empty());
        let invisible = name.is_none()
            || element.children.iter().any(|child| {
                child.name == "toolspecific"
                    && (child.attribute("activity").is_some_and(|activity| activity.contains("$invisible$"))
                        || child.children.iter().any(|property| {
                            property.attribute("key") == Some("invisible")
                                && property.text.trim().eq_ignore_ascii_case("true")
                        }))
            });
        let index = net.transitions.len();
        if nodes.insert(id.to_owned(), Node::Transition(index)).is_some() {
            return Err(PnmlError::DuplicateId { line: line_at(bytes, element.offset), id: id.to_owned() });
        }
        net.transitions.push(Transition {
            id: id.to_owned(),
            name: name.unwrap_or(id).to_owned(),
            label: if invisible { None } else { name.map(str::to_owned) },
        });
    }

    for element in in_net.iter().filter(|element| element.name == "arc") {
        let line = line_at(bytes, element.offset);
        let id = element.attribute("id").unwrap_or("");
        let source = required(element, "source", bytes)?;
        let target = required(element, "target", bytes)?;
        let weight = match element.child_text("inscription") {
            Some(text) => parse_count(text, "an arc weight", line)?,
            None => 1,
        };
        if let Some(kind) = element.child_text("arctype")
            && kind != "normal"
        {
            return Err(PnmlError::UnsupportedArcType { line, arc: id.to_owned(), kind: kind.to_owned() });
        }
        let ends = (nodes.get(source).copied(), nodes.get(target).copied());
        let (Some(source_node), Some(target_node)) = ends else {
            return Err(bad_arc(line, id, source, target));
        };
        if matches!(
            (source_node, target_node),
            (Node::Place(_), Node::Place(_)) | (Node::Transition(_), Node::Transition(_))
        ) {
            return Err(bad_arc(line, id, source, target));
        }
        net.arcs.push(Arc { source: source_node, target: target_node, weight });
    }

    let final_marking = net_element
        .children
        .iter()
        .find(|child| child.name == "finalmarkings")
        .and_then(|markings| markings.child("marking"));
    match final_marking {
        Some(marking) => {
            for place in marking.children.iter().filter(|child| child.name == "place") {
                let line = line_at(bytes, place.offset);
                let idref = required(place, "idref", bytes)?;
                let Some(&Node::Place(index)) = nodes.get(idref) else {
                    return Err(PnmlError::UnknownPlace { line, id: idref.to_owned() });
                };
                let tokens = match place.child("text") {
                    Some(text) => parse_count(&text.text, "a final marking", line)?,
                    None => 0,
                };
                net.final_marking[index] = tokens;
            }
        }
        None => {
            let mut has_output = vec![false; net.places.len()];
            for arc in &net.arcs {
                if let Node::Place(index) = arc.source {
                    has_output[index] = true;
                }
            }
            for (index, has_output) in has_output.into_iter().enumerate() {
                if !has_output {
                    net.final_marking[index] = 1;
                }
            }
        }
    }
    Ok(net)
}

fn bad_arc(line: u64, arc: &str, source: &str, target: &str) -> PnmlError {
    PnmlError::BadArc { line, arc: arc.to_owned(), from: source.to_owned(), to: target.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = r#"<?xml version="1.0" encoding="ISO-8859-1"?>
<pnml><net id="n" type="http://www.pnml.org/version-2009/grammar/pnmlcoremodel"><page id="p">
<place id="i"><name><text>start</text></name><initialMarking><text>1</text></initialMarking></place>
<place id="o"/>
<transition id="a"><name><text>caf&#233; A</text></name></transition>
<transition id="t"><name><text>tau</text></name><toolspecific tool="ProM" version="6.4" activity="$invisible$"/></transition>
<arc id="a1" source="i" target="a"><inscription><text>2</text></inscription></arc>
<arc id="a2" source="a" target="o"/>
</page></net></pnml>"#;

    #[test]
    fn reads_places_transitions_arcs_and_markings() {
        let net = read_pnml(NET.as_bytes()).expect("valid net");
        assert_eq!(net.places.len(), 2);
        assert_eq!(net.places[0].name, "start");
        assert_eq!(net.transitions[0].label.as_deref(), Some("café A"));
        assert_eq!(net.transitions[1].label, None);
        assert_eq!(net.transitions[1].name, "tau");
        assert_eq!(net.arcs.len(), 2);
        assert_eq!(net.arcs[0].weight, 2);
        assert_eq!(net.initial_marking, vec![1, 0]);
        // No <finalmarkings>: the place without outgoing arcs is final.
        assert_eq!(net.final_marking, vec![0, 1]);
    }

    #[test]
    fn rejects_arcs_between_places() {
        let broken = NET.replace(r#"source="a" target="o""#, r#"source="i" target="o""#);
        let error = read_pnml(broken.as_bytes()).expect_err("place-to-place arc");
        assert!(matches!(error, PnmlError::BadArc { line: 8, .. }), "{error}");
    }

    #[test]
    fn rejects_truncated_documents() {
        let error = read_pnml(&NET.as_bytes()[..200]).expect_err("truncated");
        assert!(error.to_string().contains("truncated") || matches!(error, PnmlError::Xml { .. }));
    }
}
