//! The effective theme, typed. Every field is present once a theme is merged over its preset.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A merged theme.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThemeModel {
    /// Format version.
    pub version: u32,
    /// Name, author, version, description.
    pub metadata: Metadata,
    /// Design tokens.
    pub settings: Settings,
    /// Component settings.
    pub components: Components,
    /// Home page.
    pub home: Home,
    /// Custom CSS.
    #[serde(default)]
    pub css: String,
}

impl ThemeModel {
    /// A palette colour by slug.
    pub fn color(&self, slug: &str) -> Option<&str> {
        self.settings.color.palette.iter().find(|p| p.slug == slug).map(|p| p.color.as_str())
    }
}

/// Theme metadata.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Metadata {
    /// Theme name.
    pub name: String,
    /// Author.
    #[serde(default)]
    pub author: Option<String>,
    /// Semantic version.
    #[serde(default)]
    pub version: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
}

/// Design tokens.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Colours.
    pub color: ColorSettings,
    /// Fonts and type scale.
    pub typography: Typography,
    /// Spacing scale.
    pub spacing: Spacing,
    /// Radii.
    pub border: Border,
    /// Shadows.
    pub shadow: Shadow,
    /// Widths and grid columns.
    pub layout: Layout,
}

/// The palette.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ColorSettings {
    /// Colours by role.
    pub palette: Vec<PaletteEntry>,
}

/// One palette colour.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct PaletteEntry {
    /// Role.
    pub slug: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Hex colour.
    pub color: String,
}

/// Typography tokens.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Typography {
    /// Font stacks.
    pub font_families: Vec<FontFamily>,
    /// Body font slug.
    pub body: String,
    /// Heading font slug.
    pub heading: String,
    /// Base font size.
    pub base_size: String,
    /// Ratio between heading levels.
    pub scale_ratio: f64,
    /// Body line height.
    pub line_height: f64,
    /// Heading weight.
    pub heading_weight: u32,
}

/// A font stack.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FontFamily {
    /// Slug.
    pub slug: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// CSS font-family value.
    pub font_family: String,
}

/// Spacing scale.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spacing {
    /// Sizes by slug.
    pub spacing_sizes: Vec<Sized>,
}

/// A named length.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Sized {
    /// Slug.
    pub slug: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// CSS length.
    pub size: String,
}

/// Radii.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Border {
    /// Small, medium, large.
    pub radius: Radius,
}

/// The three radii.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Radius {
    /// Small.
    pub small: String,
    /// Medium.
    pub medium: String,
    /// Large.
    pub large: String,
}

/// Shadows.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Shadow {
    /// Shadows by slug.
    pub presets: Vec<ShadowPreset>,
}

/// A named shadow.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ShadowPreset {
    /// Slug.
    pub slug: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// CSS box-shadow value.
    pub shadow: String,
}

/// Layout tokens.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Layout {
    /// Width of text content.
    pub content_size: String,
    /// Width of the page.
    pub wide_size: String,
    /// Product grid columns per breakpoint.
    pub grid_columns: GridColumns,
}

/// Product grid columns.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct GridColumns {
    /// Below 700px.
    pub mobile: u32,
    /// From 700px.
    pub tablet: u32,
    /// From 1100px.
    pub desktop: u32,
}

/// Component settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Components {
    /// Buttons.
    pub button: Button,
    /// Product cards.
    pub product_card: ProductCard,
    /// Site header.
    pub header: Header,
    /// Site footer.
    pub footer: Footer,
}

/// Button settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Button {
    /// none, small, medium, large or pill.
    pub radius: String,
    /// solid or outline.
    pub style: String,
    /// none or uppercase.
    pub text_transform: String,
}

/// Product card settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductCard {
    /// `w:h`.
    pub image_ratio: String,
    /// Show the vendor above the title.
    pub show_vendor: bool,
    /// Show the rating when the product has one.
    pub show_rating: bool,
    /// pill, square or none.
    pub badge_style: String,
    /// Draw a border around cards.
    pub border: bool,
}

/// Header settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    /// Stays at the top when scrolling.
    pub sticky: bool,
    /// Shows the search field.
    pub show_search: bool,
    /// Logo width in pixels.
    pub logo_width: u32,
    /// left or center.
    pub align: String,
}

/// Footer settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Footer {
    /// Shows social links.
    pub show_social: bool,
    /// Shows the contact address.
    pub show_contact: bool,
    /// Small print.
    pub text: String,
}

/// The home page.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Home {
    /// Sections in order.
    pub sections: Vec<Section>,
}

/// One home page section; `settings` is checked against its type's schema.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Section {
    /// Section type, e.g. `hero`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Optional stable id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Typed settings as JSON.
    #[serde(default)]
    pub settings: Value,
}
