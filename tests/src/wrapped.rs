//! [`Wrapped`]: a real consumer whose handler a test or a tool wraps, to put a fault (a panic) or a batching
//! around the consumer's own mapping without a hook in the product.

use courier::delivery::{BuildError, Consumer, ConsumerSpec, Handler};
use courier::health::Health;
use courier::settings::Settings;

/// Consumer `C` under its own name and spec, whose handler is `wrap` of the one `C` builds.
pub struct Wrapped<C, F> {
    /// The real consumer.
    consumer: C,
    /// Makes the handler run of the real consumer's.
    wrap: F,
}

impl<C, F> Wrapped<C, F> {
    /// `consumer`, its handler wrapped by `wrap`.
    pub fn new(consumer: C, wrap: F) -> Self {
        Self { consumer, wrap }
    }
}

impl<C, H, F> Consumer for Wrapped<C, F>
where
    C: Consumer,
    H: Handler,
    F: Fn(C::Handler) -> H + Send + Sync + 'static,
{
    type Handler = H;

    fn name(&self) -> &str {
        self.consumer.name()
    }

    fn spec(&self, settings: &Settings) -> ConsumerSpec {
        self.consumer.spec(settings)
    }

    fn build(&self, settings: &Settings, health: &Health) -> Result<H, BuildError> {
        Ok((self.wrap)(self.consumer.build(settings, health)?))
    }
}
