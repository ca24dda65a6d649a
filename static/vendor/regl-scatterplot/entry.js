// The one script static/latent_map.js needs: regl-scatterplot and its renderer, as globals.
import createScatterplot, { checkSupport, createRenderer } from 'regl-scatterplot';
window.createScatterplot = createScatterplot;
window.createScatterplot.checkSupport = checkSupport;
window.createScatterplot.createRenderer = createRenderer;
