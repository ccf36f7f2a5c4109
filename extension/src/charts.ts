/**
 * The charts of the comparison, from Apache ECharts: only the parts it draws (line, scatter,
 * parallel coordinates; canvas), loaded when a comparison first opens. Why ECharts is in
 * ARCHITECTURE.md: one maintained library for all four views, parallel coordinates included,
 * and a zoom that reports its range so the store can down-sample it again.
 */
import { LineChart, ParallelChart, ScatterChart } from 'echarts/charts';
import { AriaComponent, DataZoomComponent, GridComponent, LegendComponent, ParallelComponent, TitleComponent, TooltipComponent } from 'echarts/components';
import * as echarts from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';

// Aria: each chart's canvas gets a generated description (its series and values) for screen readers.
echarts.use([LineChart, ScatterChart, ParallelChart, AriaComponent, GridComponent, TooltipComponent, LegendComponent, DataZoomComponent, ParallelComponent, TitleComponent, CanvasRenderer]);

export { echarts };
